"""`group_message`: a block that takes part in an experiment without children. Each
learner reads the message of their group in the block's user partition (assigned by the
host on first use, sticky, shared with every split_test of the partition); a learner
with no group (an inactive partition, say) reads the default message, or nothing. Staff
and authors read every group's message, each headed by its group, so all conditions can
be checked. Reading a message publishes `xblock.group_message.shown` with the group, which
the host stamps with the learner's experiment membership.

- fields: `user_partition_id` (required), `messages` (group id, as text -> message text),
  `default_message` ("").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xbhost_sdk import Block, Fragment, ValidationMessage, View


@dataclass
class Fields:
    user_partition_id: int
    messages: dict[str, str] = field(default_factory=dict)
    default_message: str = ""
    display_name: str = "Message"


class GroupMessage(Block):
    Fields = Fields

    def render(self, view: View) -> Fragment:
        f = self.fields
        if view is View.STUDENT:
            group = self.group_for(f.user_partition_id)
            text = f.messages.get(str(group.id), f.default_message) if group else f.default_message
            if not text:
                return Fragment.hidden_fragment()
            self.publish("xblock.group_message.shown", {"group": None if group is None else group.id})
            return Fragment(f'<p class="group-message">{self.escape(text)}</p>', title=f.display_name)
        partition = self.partition(f.user_partition_id)
        groups = partition.groups if partition else ()
        rows = [
            f'<section class="group-message-condition" data-group="{g.id}">'
            f"<h4>{self.escape(g.name)}</h4><p>{self.escape(f.messages.get(str(g.id), f.default_message))}</p></section>"
            for g in groups
        ]
        return Fragment("".join(rows), title=f.display_name)

    def validate(self) -> list[ValidationMessage]:
        partition = self.partition(self.fields.user_partition_id)
        if partition is None:
            return [ValidationMessage.error(f"there is no user partition {self.fields.user_partition_id}")]
        ids = {str(g.id) for g in partition.groups}
        return [
            ValidationMessage.warning(f"message for group {gid}, which partition {partition.name!r} does not have")
            for gid in sorted(set(self.fields.messages) - ids)
        ] + [
            ValidationMessage.info(f"group {g.name!r} has no message of its own: it reads the default")
            for g in partition.groups
            if str(g.id) not in self.fields.messages
        ]
