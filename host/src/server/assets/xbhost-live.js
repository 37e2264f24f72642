// The workbench's live loop (`xbhost serve --watch DIR`, server/workbench_live.rs): a page
// with #xbhost-live asks /workbench/live for the watcher's generation every second; when
// it changed (a plugin was reloaded, or a build failed), the page reloads itself. A
// reload, not a swap of the unit's HTML into this document: this document's script nonce
// was handed to its block frames, so new markup must never join it; a new document has a
// new nonce, a new policy and frames built afresh. A failed poll waits longer each time,
// up to 10 s.
(function () {
  "use strict";
  const live = document.getElementById("xbhost-live");
  if (!live) return;
  const generation = live.getAttribute("data-generation");
  let wait = 1000;
  async function poll() {
    try {
      const response = await fetch("/workbench/live", {
        credentials: "same-origin", cache: "no-store", headers: { accept: "application/json" },
      });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const now = String((await response.json()).generation);
      if (now !== generation) {
        location.reload();
        return;
      }
      wait = 1000;
    } catch (_) {
      wait = Math.min(wait * 2, 10000);
    }
    setTimeout(poll, wait);
  }
  setTimeout(poll, wait);
})();
