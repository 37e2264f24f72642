// The {{name}} block's client-side code. The host draws the block in a sandboxed frame of
// its own and calls this function there with the block's element and the render's args;
// `runtime.call(handler, payload)` reaches this block's own handlers (and no other block's)
// and is a promise of the handler's answer.
function {{type_name}}Block(runtime, element, args) {
  "use strict";
  const form = element.querySelector("form.ask");
  const answer = element.querySelector(".answer");
  const count = element.querySelector(".count");
  const status = element.querySelector(".status");
  count.textContent = args.answers ? "Answers so far: " + args.answers : "";
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    status.textContent = "Sending...";
    runtime.call("answer", { text: form.elements.answer.value }).then(function (reply) {
      answer.textContent = "You answered: " + reply.answer;
      count.textContent = "Answers so far: " + reply.answers;
      status.textContent = "Saved.";
      form.reset();
    }, function (error) {
      status.textContent = error.message;
    });
  });
}
