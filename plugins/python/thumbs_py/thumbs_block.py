"""`thumbs_py`: the XBlock SDK's thumbs block (xblock-sdk `sample_xblocks/thumbs`) in
Python, as an XBlock author would write it against xbhost's SDK: "up" and "down" buttons
whose votes every learner of the block shares (the block's tallies), one vote per learner
(its user state), and the client-side script of the Rust `thumbs` (`static/`, shared).

- fields: `display_name` ("Thumbs") and `prompt` ("Was this helpful?").
- handler `vote` with `{"direction": "up"|"down"}`: adds 1 to that tally, keeps the
  learner's vote, publishes `xblock.thumbs.voted` (`{direction}`), answers
  `{up, down, voted}`. A second vote, or any other payload, is refused; nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from xbhost_sdk import Block, BlockError, Fragment, View, handler

DIRECTIONS = ("up", "down")


@dataclass
class Fields:
    display_name: str = "Thumbs"
    prompt: str = "Was this helpful?"


class Thumbs(Block):
    Fields = Fields

    def voted(self) -> str | None:
        return (self.state or {}).get("voted")

    def counts(self) -> tuple[int, int]:
        tallies = self.tallies()
        return tallies.get("up", 0), tallies.get("down", 0)

    def render(self, view: View) -> Fragment:
        voted = self.voted()
        up, down = self.counts()

        def button(direction: str, face: str, count: int) -> str:
            pressed = "true" if voted == direction else "false"
            return (
                f'<button type="button" class="{direction}vote" data-direction="{direction}" '
                f'aria-pressed="{pressed}">{face} <span class="count">{count}</span></button>'
            )

        html = (
            f'<div class="thumbs"><p class="thumbs-prompt">{self.escape(self.fields.prompt)}</p>'
            + button("up", "\N{THUMBS UP SIGN}", up)
            + button("down", "\N{THUMBS DOWN SIGN}", down)
            + f'<p class="thumbs-note" role="status">{"You have voted." if voted else ""}</p></div>'
        )
        fragment = Fragment(html, title=self.fields.display_name)
        return (
            fragment.add_css("thumbs.css")
            .add_javascript("thumbs.js")
            .initialize_js("ThumbsBlock", {"voted": voted})
        )

    @handler
    def vote(self, payload):
        if not isinstance(payload, dict) or set(payload) != {"direction"} or payload["direction"] not in DIRECTIONS:
            raise BlockError(f'vote expects {{"direction": "up" or "down"}}, not {payload!r}')
        before = self.voted()
        if before:
            raise BlockError(f"you have already voted {before}")
        direction = payload["direction"]
        self.add_tally(direction, 1)
        self.set_state({"voted": direction})
        self.publish("xblock.thumbs.voted", {"direction": direction})
        up, down = self.counts()
        return {"up": up, "down": down, "voted": direction}
