// xbhost's page script: block forms call their block's handler; the workbench loads
// plugins. Every post carries the page's CSRF token (the server refuses posts without it).
(function () {
  "use strict";
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";
  const course = document.body.dataset.courseKey || "";
  // The nonce the page's Content-Security-Policy runs this script by: block frames get it
  // for the scripts the host names (nothing else on the page can know it).
  const scriptNonce = document.currentScript ? document.currentScript.nonce : "";

  // The element the host puts around a page's block HTML carries a fresh random nonce,
  // and every wrapper the host wrote around a block bears it (server/page.rs). Block HTML
  // cannot know it, so an element of a block's HTML dressed as a wrapper (class xblock,
  // any data-usage-id) is not one. The first such element in the document is the host's:
  // every block's HTML comes after its start tag. The workbench's live loop puts a new
  // render in place of the old (xbhost:blocks-replaced, at the end): read again then.
  let blocks = document.querySelector("[data-xbhost-nonce]");
  let nonce = blocks ? blocks.getAttribute("data-xbhost-nonce") : "";

  // The host's wrapper of the block whose HTML holds `el`: its nearest enclosing element
  // the host wrote around a block, never `el` itself. null when there is none.
  function blockOf(el) {
    if (!nonce || !el) return null;
    for (let at = el.parentElement; at && at !== blocks; at = at.parentElement) {
      if (at.localName === "div" && at.classList.contains("xblock") && at.hasAttribute("data-usage-id") &&
          at.getAttribute("data-xbhost-wrapper") === nonce) {
        return at;
      }
    }
    return null;
  }

  function status(el, text, isError) {
    if (!el) return;
    el.textContent = text;
    el.classList.toggle("error", !!isError);
  }

  async function post(url, body, contentType) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": contentType, "x-csrf-token": csrf },
      body: body,
    });
    let answer = null;
    try { answer = await response.json(); } catch (_) { /* not JSON */ }
    if (!response.ok) {
      throw new Error((answer && answer.error) || ("HTTP " + response.status));
    }
    return answer;
  }

  // A block's form with data-handler posts {"answer": [values of the checked inputs]}
  // (numbers where they are numbers) to that handler of the block whose wrapper holds the
  // form, then the page re-renders. The block is the form's place on the page, never
  // anything the form says (its data-usage-id, its action): a form in one block's HTML
  // acts for that block only, wherever it is drawn.
  document.addEventListener("submit", async function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-handler")) return;
    event.preventDefault();
    let note = form.querySelector(".xbhost-status");
    if (!note) { note = document.createElement("p"); note.className = "xbhost-status"; form.appendChild(note); }
    const block = blockOf(form);
    if (!block) {
      status(note, "Not submitted: this form is not in a block's own HTML on this page.", true);
      return;
    }
    // A submit button of another block's HTML (its form attribute, or a form the parser
    // left open) does not act for this one.
    if (event.submitter && blockOf(event.submitter) !== block) {
      status(note, "Not submitted: the button belongs to another block.", true);
      return;
    }
    if (form.closest("[data-read-only]")) {
      status(note, "Viewing as a learner: submissions are off (they would be yours, not theirs).", true);
      return;
    }
    const usage = block.dataset.usageId;
    const handler = form.dataset.handler;
    // The form's own inputs in the block's own HTML (not those of a block inside it).
    const values = Array.from(form.querySelectorAll("input:checked, input[type=text], textarea"))
      .filter(function (input) { return input.form === form && blockOf(input) === block; })
      .map(function (input) { const n = Number(input.value); return input.value !== "" && !isNaN(n) ? n : input.value; });
    // A form with data-answers="by-name" posts {"answers": {input name: value}} instead,
    // selects included (checkboxes sharing a name: a list of their values).
    let body = { answer: values };
    if (form.dataset.answers === "by-name") {
      body = { answers: {} };
      Array.from(form.querySelectorAll("input:checked, input[type=text], textarea, select"))
        .filter(function (input) { return input.form === form && blockOf(input) === block && input.name; })
        .forEach(function (input) {
          if (input.type === "checkbox") (body.answers[input.name] = body.answers[input.name] || []).push(input.value);
          else body.answers[input.name] = input.value;
        });
    }
    status(note, "Submitting...");
    const url = "/courses/" + encodeURIComponent(course) + "/blocks/" + encodeURIComponent(usage) +
      "/handler/" + encodeURIComponent(handler);
    try {
      await post(url, JSON.stringify(body), "application/json");
      window.location.reload();
    } catch (e) {
      status(note, e.message, true);
    }
  });

  // An image input: a click writes "[x,y]" (in the image's own pixels) into the text input
  // of its form named by data-point-input.
  document.addEventListener("click", function (event) {
    const img = event.target instanceof HTMLImageElement && event.target.dataset.pointInput ? event.target : null;
    const form = img ? img.closest("form") : null;
    if (!form) return;
    const input = Array.from(form.querySelectorAll("input[type=text]")).find(function (i) { return i.name === img.dataset.pointInput; });
    if (!input || blockOf(input) !== blockOf(img)) return;
    const box = img.getBoundingClientRect();
    const sx = img.naturalWidth && box.width ? img.naturalWidth / box.width : 1;
    const sy = img.naturalHeight && box.height ? img.naturalHeight / box.height : 1;
    input.value = "[" + Math.round((event.clientX - box.left) * sx) + "," + Math.round((event.clientY - box.top) * sy) + "]";
  });

  // A label acts on its control only within one block: a label in one block's HTML
  // neither presses another block's button nor picks its choices.
  document.addEventListener("click", function (event) {
    const label = event.target instanceof Element ? event.target.closest("label") : null;
    if (!label || !label.control || label.control.contains(event.target)) return;
    if (blockOf(label) !== blockOf(label.control)) event.preventDefault();
  }, true);

  // A <video data-handler="NAME"> in a block's own HTML reports what the learner does with
  // it to that handler of the block whose wrapper holds it (blockOf, as for forms: a block
  // reports for itself only): play, pause, seek (from where the player was), ended, and
  // complete once 95% of its window (data-start, data-end, else the media) was reached.
  // Media events do not bubble, so they are caught on their way down. Each kind is sent
  // at most once a second per element, and timeupdate itself is never sent. YouTube's
  // embedded player reports the same events (below).
  const media = new WeakMap();
  function mediaState(player) {
    let s = media.get(player);
    if (!s) {
      s = { last: 0, from: null, sent: {}, complete: false, state: null, at: 0, duration: 0 };
      media.set(player, s);
    }
    return s;
  }
  function seconds(n) { return typeof n === "number" && isFinite(n) && n >= 0 ? n : 0; }
  function report(player, data, duration) {
    const block = blockOf(player);
    if (!block || player.closest("[data-read-only]")) return;
    const s = mediaState(player);
    const now = Date.now();
    if (s.sent[data.event] && now - s.sent[data.event] < 1000) return;
    s.sent[data.event] = now;
    if (data.event !== "seek_video" && seconds(duration) > 0) data.duration = duration;
    const url = "/courses/" + encodeURIComponent(course) + "/blocks/" + encodeURIComponent(block.dataset.usageId) +
      "/handler/" + encodeURIComponent(player.dataset.handler);
    // A lost report is not the learner's concern: the video plays on.
    post(url, JSON.stringify(data), "application/json").catch(function () {});
  }
  // The player reached `t`: complete once 95% of the window is behind it.
  function progress(player, s, t, duration) {
    s.last = t;
    const start = seconds(Number(player.dataset.start));
    const end = seconds(Number(player.dataset.end)) || seconds(duration);
    if (!s.complete && end > start && t >= start + 0.95 * (end - start)) {
      s.complete = true;
      report(player, { event: "complete_video", currentTime: t }, duration);
    }
  }
  function onMedia(event) {
    const video = event.target;
    if (!(video instanceof HTMLVideoElement) || !video.hasAttribute("data-handler")) return;
    const s = mediaState(video);
    const t = seconds(video.currentTime);
    const d = video.duration;
    if (event.type === "play") report(video, { event: "play_video", currentTime: t }, d);
    else if (event.type === "pause" && !video.ended) report(video, { event: "pause_video", currentTime: t }, d);
    else if (event.type === "ended") report(video, { event: "stop_video", currentTime: t }, d);
    else if (event.type === "seeking" && s.from === null) s.from = s.last;
    else if (event.type === "seeked") {
      report(video, { event: "seek_video", old_time: s.from === null ? s.last : s.from, new_time: t, type: "onSlideSeek" }, d);
      s.from = null;
    } else if (event.type === "timeupdate" && !video.seeking) {
      progress(video, s, t, d);
    }
  }
  ["play", "pause", "ended", "seeking", "seeked", "timeupdate"].forEach(function (type) {
    document.addEventListener(type, onMedia, true);
  });

  // YouTube's embedded player (an <iframe data-handler> of YouTube's privacy-enhanced host
  // whose URL asks for enablejsapi=1, in a block's HTML) reports its state by postMessage,
  // as YouTube's own iframe API has it: the page names its origin and a widget id in the
  // player's URL, says "listening" to the frame once it loads, and asks for state changes.
  // A message counts only when it comes from that origin and from the window of a player
  // frame this page set up (a block's HTML or another frame cannot speak for one), is a JSON
  // text of at most 64 KiB, and says something this code reads; anything else is dropped.
  // States: 1 playing, 2 paused, 0 ended. A reported time that jumps further than the time
  // that passed could carry playback (at up to twice the speed) is a seek.
  const YOUTUBE = "https://www.youtube-nocookie.com";
  const players = [];
  function setUpPlayers() {
    players.length = 0;
    document.querySelectorAll("iframe[data-handler]").forEach(function (frame) {
      let url;
      try { url = new URL(frame.getAttribute("src") || ""); } catch (_) { return; }
      if (url.origin !== YOUTUBE || url.searchParams.get("enablejsapi") !== "1" || !blockOf(frame)) return;
      const id = players.length + 1;
      players.push(frame);
      const s = mediaState(frame);
      s.heard = false;
      url.searchParams.set("origin", location.origin);
      url.searchParams.set("widgetid", String(id));
      frame.addEventListener("load", function () {
        // A (re)loaded player knows nothing of this page yet.
        s.heard = false;
        s.state = null;
        s.at = 0;
        // The player may not be ready at `load`: say it again until it answers (10 s).
        let tries = 0;
        const hello = function () {
          if (s.heard || tries++ >= 20 || !frame.contentWindow) return;
          frame.contentWindow.postMessage(JSON.stringify({ event: "listening", id: id, channel: "widget" }), YOUTUBE);
          setTimeout(hello, 500);
        };
        hello();
      });
      frame.src = url.toString();
    });
  }
  setUpPlayers();
  function youtubeState(frame, s, state) {
    if (state === s.state) return;
    s.state = state;
    const t = s.last;
    if (state === 1) report(frame, { event: "play_video", currentTime: t }, s.duration);
    else if (state === 2) report(frame, { event: "pause_video", currentTime: t }, s.duration);
    else if (state === 0) report(frame, { event: "stop_video", currentTime: t }, s.duration);
  }
  function youtubeTime(frame, s, t) {
    const now = Date.now();
    const first = !s.at;
    const passed = first ? 0 : (now - s.at) / 1000;
    s.at = now;
    const reach = s.state === 1 ? 2 * passed + 1 : 1;
    // The first time reported is where the player starts (its window's start), not a seek.
    if (!first && (t > s.last + reach || t < s.last - 1)) {
      report(frame, { event: "seek_video", old_time: s.last, new_time: t, type: "onSlideSeek" }, s.duration);
    }
    progress(frame, s, t, s.duration);
  }
  window.addEventListener("message", function (event) {
    if (!players.length || event.origin !== YOUTUBE || typeof event.data !== "string" || event.data.length > 65536) return;
    const frame = players.find(function (f) { return f.contentWindow === event.source; });
    if (!frame) return;
    let message;
    try { message = JSON.parse(event.data); } catch (_) { return; }
    if (!message || typeof message !== "object") return;
    const s = mediaState(frame);
    if (!s.heard) {
      s.heard = true;
      frame.contentWindow.postMessage(JSON.stringify({
        event: "command", func: "addEventListener", args: ["onStateChange"],
        id: players.indexOf(frame) + 1, channel: "widget",
      }), YOUTUBE);
    }
    const info = message.info;
    if (message.event === "onStateChange" && typeof info === "number") {
      youtubeState(frame, s, info);
    } else if ((message.event === "infoDelivery" || message.event === "initialDelivery") &&
               info && typeof info === "object") {
      if (seconds(info.duration) > 0) s.duration = info.duration;
      if (typeof info.currentTime === "number") youtubeTime(frame, s, seconds(info.currentTime));
      if (typeof info.playerState === "number") youtubeState(frame, s, info.playerState);
    }
  });

  // Blocks with client-side code (contract 0.1.2): the host wrote, on the block's wrapper,
  // what its frame loads (data-xbhost-client: style sheets, scripts, the function to call
  // and its arguments) and put the block's HTML in a <template> there. Only wrappers the
  // host wrote count (the nonce). Each such block is drawn in a frame of its own,
  // sandboxed to scripts only (no same-origin rights: its scripts cannot reach this page,
  // other frames, cookies or storage; no forms, popups or navigation of the page), built
  // from the host's URLs and the block's own HTML, under a policy of its own on top of the
  // page's: scripts only the host named (by the page's nonce), style sheets, images and
  // media only from this host, no connections, frames or form targets, so its script has
  // no way out but posting to this page. The page answers only messages from that frame's
  // window, only for the document it built (a frame that navigates away is dropped), and
  // calls only that frame's block's handlers: at most 8 in flight, a burst of 20 and then
  // 2 a second, payloads of at most 64 KiB; a frame that sends more than 200 messages in a
  // second is silenced. Answers go back to that window alone.
  const HANDLER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
  const clientFrames = new Map(); // contentWindow -> entry
  const origin = location.origin;
  function attr(text) {
    return String(text).replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
  }
  function setUpFrames() {
    clientFrames.clear();
    if (blocks) blocks.querySelectorAll("div.xblock[data-xbhost-client]").forEach(function (wrapper) {
      if (wrapper.getAttribute("data-xbhost-wrapper") !== nonce) return;
      let code;
      try { code = JSON.parse(wrapper.getAttribute("data-xbhost-client")); } catch (_) { return; }
      let template = null;
      for (const child of wrapper.children) {
        if (child.localName === "template" && child.hasAttribute("data-xbhost-client-html")) template = child;
      }
      if (!code || !template) return;
      const urls = function (list) {
        return Array.isArray(list) ? list.filter(function (u) { return typeof u === "string" && u.startsWith("/plugins/"); }) : [];
      };
      // The block's HTML, read in an inert document (nothing loads), without the page's
      // wrapper marks of any children in it: the frame gets no secret of the page.
      const inert = document.implementation.createHTMLDocument("");
      const box = inert.createElement("div");
      box.appendChild(inert.importNode(template.content, true));
      box.querySelectorAll("[data-xbhost-wrapper]").forEach(function (e) { e.removeAttribute("data-xbhost-wrapper"); });
      const policy = "default-src 'none'; script-src 'nonce-" + scriptNonce + "'; style-src " + origin +
        " 'unsafe-inline'; img-src " + origin + " data:; font-src " + origin + "; media-src " + origin +
        "; connect-src 'none'; frame-src 'none'; form-action 'none'; base-uri 'none'";
      const n = " nonce=\"" + attr(scriptNonce) + "\"";
      const doc = "<!doctype html><html><head><meta charset=\"utf-8\">" +
        "<meta http-equiv=\"Content-Security-Policy\" content=\"" + attr(policy) + "\">" +
        "<style>html,body{margin:0;padding:0;background:transparent}</style>" +
        urls(code.css).map(function (u) { return "<link rel=\"stylesheet\" href=\"" + attr(u) + "\">"; }).join("") +
        "<script" + n + " src=\"/assets/xbhost-frame.js\"></" + "script>" +
        urls(code.js).map(function (u) { return "<script" + n + " src=\"" + attr(u) + "\"></" + "script>"; }).join("") +
        "</head><body><div id=\"xbhost-block\">" + box.innerHTML + "</div></body></html>";
      const frame = document.createElement("iframe");
      frame.className = "xbhost-client-frame";
      frame.setAttribute("sandbox", "allow-scripts");
      frame.setAttribute("title", typeof code.title === "string" ? code.title : "block");
      frame.setAttribute("referrerpolicy", "no-referrer");
      frame.style.width = "100%";
      frame.style.border = "0";
      frame.style.height = "0";
      frame.srcdoc = doc;
      const entry = { wrapper: wrapper, frame: frame, inFlight: 0, tokens: 20, refilled: Date.now(),
                      second: 0, messages: 0, loaded: false };
      frame.addEventListener("load", function () {
        const w = frame.contentWindow;
        if (!w) return;
        if (entry.loaded) {
          // It navigated away from the document the page built: no longer the block's.
          clientFrames.delete(w);
          return;
        }
        entry.loaded = true;
        w.postMessage({ xbhost: "host", kind: "init", init: code.init || "", args: code.args === undefined ? null : code.args }, "*");
      });
      template.after(frame);
      if (frame.contentWindow) clientFrames.set(frame.contentWindow, entry);
    });
  }
  setUpFrames();
  function silence(entry, why) {
    clientFrames.delete(entry.frame.contentWindow);
    console.warn("block " + entry.wrapper.dataset.usageId + " is no longer heard: " + why);
  }
  window.addEventListener("message", async function (event) {
    const entry = clientFrames.get(event.source);
    if (!entry) return;
    const now = Date.now();
    if (now - entry.second >= 1000) { entry.second = now; entry.messages = 0; }
    if (++entry.messages > 200) { silence(entry, "more than 200 messages in a second"); return; }
    const m = event.data;
    if (!m || typeof m !== "object" || m.xbhost !== "frame") return;
    const answer = function (reply) {
      reply.xbhost = "host";
      reply.kind = "answer";
      reply.id = m.id;
      if (entry.frame.contentWindow) entry.frame.contentWindow.postMessage(reply, "*");
    };
    if (m.kind === "height" && typeof m.height === "number" && isFinite(m.height)) {
      entry.frame.style.height = Math.max(0, Math.min(10000, Math.ceil(m.height))) + "px";
    } else if (m.kind === "error") {
      console.warn("block " + entry.wrapper.dataset.usageId + ": " + String(m.message).slice(0, 2000));
    } else if (m.kind === "call") {
      if (typeof m.handler !== "string" || !HANDLER_NAME.test(m.handler)) {
        answer({ ok: false, error: "a handler name is 1 to 128 of A-Z, a-z, 0-9, _, . and -" });
      } else if (typeof m.payload !== "string" || m.payload.length > 65536) {
        answer({ ok: false, error: "a payload is JSON text of at most 64 KiB" });
      } else if (entry.wrapper.closest("[data-read-only]")) {
        answer({ ok: false, error: "this page is read-only: handlers are not called" });
      } else if (entry.inFlight >= 8) {
        answer({ ok: false, error: "8 calls of this block are in flight: wait for one to finish" });
      } else if ((entry.tokens = Math.min(20, entry.tokens + (now - entry.refilled) * 0.002), entry.refilled = now, entry.tokens < 1)) {
        answer({ ok: false, error: "this block calls its handlers too often (more than 2 a second after 20)" });
      } else {
        entry.tokens -= 1;
        entry.inFlight++;
        const url = "/courses/" + encodeURIComponent(course) + "/blocks/" +
          encodeURIComponent(entry.wrapper.dataset.usageId) + "/handler/" + encodeURIComponent(m.handler);
        try {
          answer({ ok: true, value: await post(url, m.payload, "application/json") });
        } catch (e) {
          answer({ ok: false, error: e.message });
        } finally {
          entry.inFlight--;
        }
      }
    }
  });

  // The workbench's live loop (xbhost-live.js) replaced the rendered unit: its blocks,
  // their nonce, players and frames are new (the old frames left with their elements).
  document.addEventListener("xbhost:blocks-replaced", function () {
    blocks = document.querySelector("[data-xbhost-nonce]");
    nonce = blocks ? blocks.getAttribute("data-xbhost-nonce") : "";
    setUpPlayers();
    setUpFrames();
  });

  // Workbench: a new course starts at its first unit.
  document.querySelectorAll("select[data-submit-on-change]").forEach(function (select) {
    select.addEventListener("change", function () {
      const unit = select.form.querySelector("select[name=unit]");
      if (unit) unit.value = "";
      select.form.submit();
    });
  });

  // Workbench: install a plugin from a local file, then re-render the unit with it.
  const loader = document.getElementById("plugin-loader");
  if (loader) {
    const previous = sessionStorage.getItem("xbhost-plugin-note");
    if (previous) {
      sessionStorage.removeItem("xbhost-plugin-note");
      status(document.getElementById("plugin-status"), previous);
    }
    loader.addEventListener("submit", async function (event) {
      event.preventDefault();
      const note = document.getElementById("plugin-status");
      const file = loader.querySelector("input[type=file]").files[0];
      if (!file) { status(note, "Choose a .wasm file first.", true); return; }
      const name = loader.querySelector("input[name=name]").value.trim();
      status(note, "Installing " + file.name + "...");
      try {
        const record = await post("/admin/plugins" + (name ? "?name=" + encodeURIComponent(name) : ""),
          await file.arrayBuffer(), "application/wasm");
        const done = "Installed " + record.name + " " + record.version + " (" + record.size + " bytes); the unit below uses it.";
        sessionStorage.setItem("xbhost-plugin-note", done);
        window.location.reload();
      } catch (e) {
        status(note, e.message, true);
      }
    });
  }
})();
