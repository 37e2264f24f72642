// xbhost's page script: block forms call their block's handler; the workbench loads
// plugins. Every post carries the page's CSRF token (the server refuses posts without it).
(function () {
  "use strict";
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";
  const course = document.body.dataset.courseKey || "";

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
  // form (only the host writes data-usage-id: a block can call no other block's handler),
  // then the page re-renders.
  document.addEventListener("submit", async function (event) {
    const form = event.target.closest("form[data-handler]");
    if (!form) return;
    event.preventDefault();
    let note = form.querySelector(".xbhost-status");
    if (!note) { note = document.createElement("p"); note.className = "xbhost-status"; form.appendChild(note); }
    if (form.closest("[data-read-only]")) {
      status(note, "Viewing as a learner: submissions are off (they would be yours, not theirs).", true);
      return;
    }
    const block = form.closest(".xblock[data-usage-id]");
    if (!block) return;
    const usage = block.dataset.usageId;
    const handler = form.dataset.handler;
    const values = Array.from(form.querySelectorAll("input:checked, input[type=text], textarea"))
      .map(function (input) { const n = Number(input.value); return input.value !== "" && !isNaN(n) ? n : input.value; });
    status(note, "Submitting...");
    const url = "/courses/" + encodeURIComponent(course) + "/blocks/" + encodeURIComponent(usage) +
      "/handler/" + encodeURIComponent(handler);
    try {
      await post(url, JSON.stringify({ answer: values }), "application/json");
      window.location.reload();
    } catch (e) {
      status(note, e.message, true);
    }
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
