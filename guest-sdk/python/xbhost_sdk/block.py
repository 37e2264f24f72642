"""The class a block author subclasses: `render` is required, the rest has defaults.

```python
from dataclasses import dataclass
from xbhost_sdk import Block, Fragment, View, handler

@dataclass
class Fields:
    question: str = "Did you like it?"

class Thumbs(Block):
    Fields = Fields

    def render(self, view: View) -> Fragment:
        votes = self.tallies()
        return Fragment(f"<p>{self.escape(self.fields.question)}</p>"
                        f"<p>{votes.get('up', 0)} up</p>")

    @handler
    def vote(self, payload):
        return {"up": self.add_tally("up", 1)}
```

A block keeps nothing between calls: each call makes a new instance with the block's typed
fields, and per-user data lives in the host (tags, user state, tallies).
"""

from __future__ import annotations

import html
import json
from typing import Any, Callable, Optional, TypeVar

from .fields import NoFields, parse_fields
from .host import HostApi
from .types import (
    BlockError,
    Condition,
    Fragment,
    Group,
    Source,
    TagScope,
    User,
    UserPartition,
    ValidationMessage,
    View,
)

F = TypeVar("F", bound=Callable[..., Any])

_HANDLER = "__xbhost_handler__"


def handler(name_or_function: Any = None) -> Any:
    """Declares an XBlock-style handler: a method taking the JSON payload (parsed) and
    answering a JSON-serializable value. `@handler` names it after the method;
    `@handler("name")` gives another name."""

    def mark(function: F, name: Optional[str] = None) -> F:
        setattr(function, _HANDLER, name or function.__name__)
        return function

    if callable(name_or_function):
        return mark(name_or_function)
    return lambda function: mark(function, name_or_function)


class Block:
    """A block type. Subclass it, set `Fields` to a dataclass of the authored fields, and
    implement `render`."""

    Fields: type = NoFields

    def __init__(self, host: HostApi):
        self._host = host
        self.fields = parse_fields(self.Fields, host.fields_json(), host.block_type(), host.usage_id())

    # What a block implements.

    def render(self, view: View) -> Fragment:
        raise NotImplementedError(f"block type {type(self).__name__} has no render method")

    def visible_children(self) -> list[str]:
        """The children the current learner sees (used by hiding and grading). By default
        all of them."""
        return self.children

    def validate(self) -> list[ValidationMessage]:
        """Messages for course authors. By default none."""
        return []

    __test__ = False  # a `Block` subclass named Test... is no pytest test class

    @classmethod
    def handlers(cls) -> dict[str, str]:
        """Handler name -> method name, of every `@handler` of the class (found once per
        class, on first use)."""
        found = cls.__dict__.get("_xbhost_handlers")
        if found is None:
            found = {}
            for klass in reversed(cls.__mro__):
                for attr, value in vars(klass).items():
                    name = getattr(value, _HANDLER, None)
                    if name is not None:
                        found[name] = attr
            cls._xbhost_handlers = found
        return dict(found)

    def handle(self, name: str, payload: Any) -> Any:
        """Calls the handler `name`; the SDK's adapters call this."""
        method = self.handlers().get(name)
        if method is None:
            raise BlockError(f"block {json.dumps(self.usage_id)} has no handler named {json.dumps(name)}")
        return getattr(self, method)(payload)

    # The host's services.

    @property
    def host(self) -> HostApi:
        """The host, for calls this class has no helper for."""
        return self._host

    @property
    def user(self) -> User:
        return self._host.current_user()

    @property
    def course_key(self) -> str:
        return self._host.course_key()

    @property
    def usage_id(self) -> str:
        return self._host.usage_id()

    @property
    def children(self) -> list[str]:
        """Usage ids of this block's children, in authored order."""
        return self._host.children()

    def course_tag(self, key: str) -> Optional[str]:
        """A tag of the current user in the current course."""
        return self._host.get_tag(TagScope.COURSE, key)

    def set_course_tag(self, key: str, value: str) -> None:
        self._host.set_tag(TagScope.COURSE, key, value)

    def user_tag(self, key: str) -> Optional[str]:
        """A global tag of the current user."""
        return self._host.get_tag(TagScope.USER, key)

    def set_user_tag(self, key: str, value: str) -> None:
        self._host.set_tag(TagScope.USER, key, value)

    def partitions(self) -> list[UserPartition]:
        return self._host.partitions()

    def partition(self, partition_id: int) -> Optional[UserPartition]:
        return next((p for p in self.partitions() if p.id == partition_id), None)

    def group_for(self, partition_id: int) -> Optional[Group]:
        """The learner's group in a partition (assigned and stored on first use)."""
        return self._host.group_for(partition_id)

    def render_child(self, usage_id: str, view: View) -> Fragment:
        """Renders one of this block's children. In the host its HTML is a placeholder the
        host fills in after containing this block's HTML: place it as it is."""
        return self._host.render_child(usage_id, view, None)

    def render_condition(self, usage_id: str, view: View, condition: Condition) -> Fragment:
        """Renders a child as one condition of an experiment (staff and author views)."""
        return self._host.render_child(usage_id, view, condition)

    @property
    def state(self) -> Any:
        """This block's per-user state (parsed JSON), `None` when there is none."""
        text = self._host.get_state()
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError as e:
            raise BlockError(f"stored state does not parse: {e}") from None

    def set_state(self, state: Any) -> None:
        self._host.set_state(json.dumps(state, allow_nan=False))

    def tallies(self) -> dict[str, int]:
        """This block's tallies (key -> count), shared by every learner of the block, this
        call's own additions included."""
        return dict(self._host.tallies())

    def add_tally(self, key: str, amount: int = 1) -> int:
        """Adds `amount` to this block's tally `key`, stored with this call's other writes;
        answers the new count."""
        return self._host.add_tally(key, amount)

    def selected_children(self, count: int) -> list[str]:
        """`count` of this block's children for the current learner, picked by the host
        (sticky, uniform, in authored order): randomized content."""
        return self._host.selected_children(count)

    def source(self, usage_id: str) -> Source:
        """The current learner's state of another block, which this block's authored
        `sources` field must name."""
        return self._host.source(usage_id)

    def publish(self, name: str, data: Any) -> None:
        """Publishes an analytics event; the host adds user, course, block and experiments."""
        self._host.publish(name, json.dumps(data, allow_nan=False))

    @staticmethod
    def escape(text: str) -> str:
        """`text` safe inside HTML (an attribute's value too)."""
        return html.escape(text, quote=True)
