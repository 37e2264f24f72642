// The workbench's live loop (`xbhost serve --watch DIR`, server/workbench_live.rs): a page
// with #xbhost-live asks /workbench/live for the watcher's generation every second; when
// it changed (a plugin was reloaded, or a build failed), the page fetches itself again and
// puts the new render, error boxes and block output (#render) and side panel in place of
// the old ones, in this same document: no reload, nothing typed elsewhere on the page is
// lost. The fetched page is parsed inert (its scripts never run; this page's policy still
// runs only this script), and the page script sets the new blocks up again
// (xbhost:blocks-replaced). A failed poll or fetch waits longer each time, up to 10 s.
(function () {
  "use strict";
  const live = document.getElementById("xbhost-live");
  if (!live) return;
  let generation = live.getAttribute("data-generation");
  let wait = 1000;
  async function replaceRender() {
    const response = await fetch(location.href, {
      credentials: "same-origin", cache: "no-store", headers: { accept: "text/html" },
    });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    const render = fresh.getElementById("render");
    const old = document.getElementById("render");
    if (!render || !old) throw new Error("the page holds no unit");
    old.replaceWith(document.importNode(render, true));
    const aside = fresh.querySelector("div.wb > aside");
    const oldAside = document.querySelector("div.wb > aside");
    if (aside && oldAside) oldAside.replaceWith(document.importNode(aside, true));
    document.dispatchEvent(new CustomEvent("xbhost:blocks-replaced"));
  }
  async function poll() {
    try {
      const response = await fetch("/workbench/live", {
        credentials: "same-origin", cache: "no-store", headers: { accept: "application/json" },
      });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const now = String((await response.json()).generation);
      if (now !== generation) {
        await replaceRender();
        generation = now;
      }
      wait = 1000;
    } catch (_) {
      wait = Math.min(wait * 2, 10000);
    }
    setTimeout(poll, wait);
  }
  setTimeout(poll, wait);
})();
