"""Test plugin: a hostile block in Python, for `tests/python_blocks.rs`. What the project's
Rust test plugins do (`looper`, `memory_bomb`, `sleeper`, `forger`, `breakout`), done from
CPython, whose interpreter and allocator stand between the block and the sandbox. The
`mode` field picks the attack:

- `loop`: spins in Python forever.
- `memory`: keeps allocating 1 MiB buffers.
- `sleep`: `time.sleep(ms / 1000)`, then renders `<p>slept</p>`.
- `events`: publishes the host's own events, a goal event, one of 1 MiB and 64 of 16 KiB,
  and writes the host's partition tag; the page shows a JSON report (`<script
  class="probe">`) of what the host answered.
- `markup`: renders the `markup` field as it is, after misusing each child's placeholder
  (hidden in SVG, a template and a select, a near miss on its token, placed twice).
- `huge`: renders 2 MiB of HTML.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from xbhost_sdk import Block, Fragment, HostError, View


@dataclass
class Fields:
    mode: str = ""
    markup: str = ""
    ms: int = 0


def outcome(call) -> str:
    try:
        call()
    except HostError as e:
        return str(e)
    return "accepted"


class Hostile(Block):
    Fields = Fields

    def render(self, view: View) -> Fragment:
        mode = self.fields.mode
        if mode == "loop":
            n = 0
            while True:
                n += 1
        if mode == "memory":
            hoard = []
            while True:
                hoard.append(bytearray(1 << 20))
        if mode == "sleep":
            time.sleep(self.fields.ms / 1000)
            return Fragment("<p>slept</p>")
        if mode == "events":
            return self.events_report()
        if mode == "markup":
            return Fragment(self.misused_placeholders(view) + self.fields.markup)
        if mode == "huge":
            return Fragment("<p>" + "x" * (2 << 20) + "</p>")
        raise ValueError(f"no mode {mode!r}")

    def events_report(self) -> Fragment:
        report = {}
        for name, data in [
            (
                "xmodule.partitions.assigned_user_to_partition",
                {"group_id": 1, "group_name": "forged", "partition_id": 0, "partition_name": "forged"},
            ),
            ("xblock.split_test.child_render", {"child_id": "no-such-block", "user_partition_id": 0, "group_id": 1}),
            ("xbhost.block.failed", {"plugin": "html", "kind": "trap", "error": "forged"}),
            ("problem_check", {"correct": True, "problem_id": "forged"}),
        ]:
            report[name] = outcome(lambda: self.publish(name, data))
        report["big"] = outcome(lambda: self.publish("hostile_py.big", {"pad": "x" * (1 << 20)}))
        medium = {"pad": "x" * (16 * 1024 - 16)}
        accepted, refusal = 0, None
        for _ in range(64):
            said = outcome(lambda: self.publish("hostile_py.medium", medium))
            if said != "accepted":
                refusal = said
                break
            accepted += 1
        report["medium"] = {"accepted": accepted, "refusal": refusal}
        report["partition_tag"] = outcome(
            lambda: self.set_course_tag("xblock.partition_service.partition_50", "1")
        )
        text = json.dumps(report).replace("<", "\\u003c")
        return Fragment(f'<script type="application/json" class="probe">{text}</script>')

    def misused_placeholders(self, view: View) -> str:
        html = '<div class="breakout">'
        for child in self.children:
            placeholder = self.render_child(child, view).html
            # Hidden away, where it must not be filled in (the real use comes last, so a
            # host that fills in only the first would show nothing).
            html += f"<svg>{placeholder}</svg><template>{placeholder}</template><select>{placeholder}</select>"
            html += placeholder.replace('="', '="0', 1)
            html += f'<div class="child-slot">{placeholder}</div>'
            html += f'<div class="child-again">{placeholder}</div>'
        return html
