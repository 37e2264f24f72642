"""`{{name}}`: an xbhost block. It greets the learner with its authored greeting and lets
them answer; what they answered is kept for them and shown on their next visit.

- fields (what a course author writes in the course document): `greeting`, and the
  `display_name` containers show.
- render: the greeting, the learner's last answer, and a form, with the client-side code
  of `static/` (`block.css`, `block.js`): the host draws the block in a sandboxed frame of
  its own, where `{{type_name}}Block` sends the form to the `answer` handler
  (`runtime.call`) and shows its reply without reloading the page.
- handler `answer`: `{"text": text}` (the script, or `xbhost handle`) or
  `{"answer": [text]}`; stores the text for the learner and publishes an
  `{{name}}.answered` event.
- scenarios (`scenarios.json`): the workbench lists them under "Scenarios" and renders
  each in a unit of its own, without a course document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from xbhost_sdk import Block, BlockError, Fragment, View, deny_unknown_fields, handler

MAX_ANSWER_BYTES = 500
"""Longest answer kept, in bytes: whatever a learner sends is bounded."""


@deny_unknown_fields
@dataclass
class Fields:
    """The block's authored fields, typed. Missing fields take their defaults; a field the
    block does not know is an error, so a misspelt one is caught when the course loads."""

    display_name: Optional[str] = None
    greeting: str = "Hello"


class {{type_name}}(Block):
    Fields = Fields

    def render(self, view: View) -> Fragment:
        state = self.state or {}
        answer = state.get("answer")
        answered = f"You answered: {self.escape(answer)}" if answer else ""
        html = (
            f'<div class="{{name}}"><p class="hello">{self.escape(self.fields.greeting)}, '
            f"{self.escape(self.user.username)}!</p>"
            f'<p class="answer">{answered}</p><p class="count"></p>'
            f'<form class="ask"><label>Your answer <input type="text" name="answer" '
            f'maxlength="{MAX_ANSWER_BYTES}"></label> <button type="submit">Send</button></form>'
            f'<p class="status" role="status"></p></div>'
        )
        return (
            Fragment(html, title=self.fields.display_name)
            .add_css("block.css")
            .add_javascript("block.js")
            .initialize_js("{{type_name}}Block", {"answers": state.get("answers", 0)})
        )

    @handler
    def answer(self, payload):
        text = answer_text(payload)
        state = self.state or {}
        state = {"answer": text, "answers": state.get("answers", 0) + 1}
        self.set_state(state)
        self.publish("{{name}}.answered", {"answer": text})
        return state


def answer_text(payload) -> str:
    """The answer's text from `{"answer": [text]}` or `{"text": text}` (a number the page
    script sent as a number counts as its digits), at most MAX_ANSWER_BYTES."""
    value = None
    if isinstance(payload, dict):
        value = payload.get("text")
        if value is None and isinstance(payload.get("answer"), list) and payload["answer"]:
            value = payload["answer"][0]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise BlockError('send {"text": "..."} or {"answer": ["..."]}')
    text = value.strip() if isinstance(value, str) else str(value)
    if not text:
        raise BlockError("the answer is empty")
    size = len(text.encode())
    if size > MAX_ANSWER_BYTES:
        raise BlockError(f"the answer is {size} bytes; at most {MAX_ANSWER_BYTES} are kept")
    return text
