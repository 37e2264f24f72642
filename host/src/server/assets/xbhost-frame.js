// xbhost's script inside a block's frame (contract 0.1.2 client code): the block's side of
// the host's channel. The frame is sandboxed without same-origin rights, so nothing in it
// can read or act on the page, other blocks, the learner's session or the host's marks;
// all it can do is post messages to the page, whose script (xbhost.js) answers only
// those from this frame's window, and only for this frame's block.
//
// The block's script defines a function; once the frame has loaded, the page says which
// (with its arguments), and this calls it as XBlock's initialize_js does:
// `function (runtime, element, args)`, with `element` the element that holds the block's
// HTML and `runtime.call(handler, payload)` a promise of the answer of this block's
// handler (rejected with the host's message when it fails).
(function () {
  "use strict";
  const pending = new Map();
  let next = 1;
  let started = false;

  function send(message) {
    message.xbhost = "frame";
    parent.postMessage(message, "*");
  }

  const runtime = Object.freeze({
    call: function (handler, payload) {
      return new Promise(function (resolve, reject) {
        const id = next++;
        pending.set(id, { resolve: resolve, reject: reject });
        let text;
        try { text = JSON.stringify(payload === undefined ? null : payload); } catch (e) {
          pending.delete(id);
          reject(new Error("the payload is not JSON: " + e.message));
          return;
        }
        send({ kind: "call", id: id, handler: String(handler), payload: text });
      });
    },
  });

  function report(text) {
    send({ kind: "error", message: String(text).slice(0, 2000) });
  }

  window.addEventListener("error", function (event) { report(event.message); });
  window.addEventListener("unhandledrejection", function (event) {
    report(event.reason && event.reason.message ? event.reason.message : event.reason);
  });

  window.addEventListener("message", function (event) {
    // Only the page speaks for the host: not another frame, not the block itself.
    if (event.source !== parent) return;
    const m = event.data;
    if (!m || typeof m !== "object" || m.xbhost !== "host") return;
    if (m.kind === "answer" && pending.has(m.id)) {
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.ok) p.resolve(m.value); else p.reject(new Error(String(m.error)));
    } else if (m.kind === "init" && !started) {
      started = true;
      const root = document.getElementById("xbhost-block");
      const init = typeof m.init === "string" ? m.init : "";
      if (!init) return;
      const fn = window[init];
      if (typeof fn !== "function") {
        report("the block's scripts define no function " + init);
        return;
      }
      try { fn(runtime, root, m.args === undefined ? null : m.args); } catch (e) {
        report(e && e.message ? e.message : e);
      }
    }
  });

  // The page sizes the frame to its content.
  let last = -1;
  function height() {
    const h = Math.ceil(document.documentElement.scrollHeight);
    if (h !== last) { last = h; send({ kind: "height", height: h }); }
  }
  document.addEventListener("DOMContentLoaded", function () {
    height();
    if (typeof ResizeObserver === "function") new ResizeObserver(height).observe(document.documentElement);
  });
})();
