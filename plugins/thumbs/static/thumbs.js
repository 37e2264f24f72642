// The thumbs block's client-side code: its buttons vote through the block's `vote` handler
// and show the counts it answers. Runs in the block's sandboxed frame (contract 0.1.2).
function ThumbsBlock(runtime, element, args) {
  "use strict";
  const note = element.querySelector(".thumbs-note");
  function show(counts) {
    element.querySelector(".upvote .count").textContent = counts.up;
    element.querySelector(".downvote .count").textContent = counts.down;
    element.querySelectorAll("button[data-direction]").forEach(function (b) {
      b.disabled = true;
      b.setAttribute("aria-pressed", String(b.dataset.direction === counts.voted));
    });
    note.textContent = "Thank you for voting.";
  }
  element.querySelectorAll("button[data-direction]").forEach(function (button) {
    button.disabled = !!args.voted;
    button.addEventListener("click", function () {
      note.textContent = "Voting...";
      runtime.call("vote", { direction: button.dataset.direction }).then(show, function (e) {
        note.textContent = e.message;
      });
    });
  });
}
