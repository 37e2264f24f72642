"""A host in memory, so Python blocks are unit-tested with pytest in plain CPython, no wasm
build. It answers as the real host does where a block can tell (keys checked, host-owned
events refused, a partition that does not exist is `not_found`, tallies bounded):

```python
from xbhost_sdk import View
from xbhost_sdk.testing import TestHost
from thumbs import Thumbs

def test_a_vote_counts():
    host = TestHost("thumbs", "thumbs_1").fields({"question": "Good?"})
    assert host.handle(Thumbs, "vote", {}) == {"up": 1}
    assert "1 up" in host.render(Thumbs, View.STUDENT).html
```
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from .block import Block
from .fields import FieldsError
from .types import (
    BlockError,
    Condition,
    Fragment,
    Group,
    HostError,
    Source,
    TagScope,
    User,
    UserPartition,
    ValidationMessage,
    View,
)

MAX_TAG_KEY_BYTES = 255
"""The longest tag (and tally) key the host takes, in UTF-8 bytes."""
MAX_TALLY_KEYS = 256
"""Most tally keys a block may have, as the real host allows."""
MAX_TAG_VALUE_BYTES = 1024
"""The longest tag value the host takes by default, in UTF-8 bytes."""
MAX_EVENTS = 100
"""Most events a request may publish, as the host allows by default."""
MAX_EVENT_BYTES = 16 << 10
"""The largest event's data, in bytes of JSON, as the host allows by default."""
MAX_REQUEST_EVENT_BYTES = 256 << 10
"""Bytes of events (data and name) a request may publish, as the host allows by default."""
MAX_TAG_WRITES = 100
"""Tag writes a request may make, as the host allows by default."""
MAX_TAG_KEYS = 256
"""Tag keys a user may have in each scope, as the host allows by default."""
PARTITION_SERVICE_PREFIX = "xblock.partition_service."
"""Course tags the host's partition service keeps (assignments, the holdout): blocks may read them, not write them."""
MAX_CLIENT_FILES = 16
MAX_CLIENT_ARGS_BYTES = 16 << 10
_JS_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]{0,63}\Z")
_HOST_OWNED_EVENTS = (
    "xmodule.partitions.assigned_user_to_partition",
    "xblock.split_test.child_render",
)
_HOST_OWNED_PREFIXES = ("xbhost.", "xmodule.partitions.", "edx.librarycontentblock.")


@dataclass(frozen=True)
class ChildRender:
    """A child the block rendered, as the test host saw the call."""

    usage_id: str
    view: View
    condition: Optional[Condition]


class TestHost:
    """A host for one block, set up with chained calls, then driven with
    `render(BlockClass, view)`, `handle(BlockClass, name, payload)` and the rest."""

    __test__ = False  # not a pytest test class

    def __init__(self, block_type: str, usage_id: str):
        self._block_type = block_type
        self._usage_id = usage_id
        self._course_key = "course-v1:test+test+test"
        self._user = User(id="user-1", username="learner")
        self._fields: dict[str, Any] = {}
        self._children: list[str] = []
        self._partitions: list[UserPartition] = []
        self._groups: dict[int, int] = {}
        self._child_fragments: dict[str, Fragment] = {}
        self._selection: Optional[list[str]] = None
        self._sources: dict[str, Source] = {}
        self._client_assets: Optional[list[str]] = None
        self.tags: dict[tuple[TagScope, str], str] = {}
        self.state_json: Optional[str] = None
        self.stored_tallies: dict[str, int] = {}
        self.events: list[tuple[str, Any]] = []
        self.rendered_children: list[ChildRender] = []
        self._selected: Optional[int] = None
        self._events_before = 0
        self._event_bytes = 0
        self._tag_writes = 0

    # Set-up.

    def fields(self, fields: dict[str, Any]) -> TestHost:
        self._fields = fields
        return self

    def with_children(self, children: Iterable[str]) -> TestHost:
        self._children = list(children)
        return self

    def username(self, username: str) -> TestHost:
        self._user = User(id=self._user.id, username=username, is_staff=self._user.is_staff)
        return self

    def staff(self) -> TestHost:
        self._user = User(id=self._user.id, username=self._user.username, is_staff=True)
        return self

    def anonymous(self) -> TestHost:
        self._user = User(id="anonymous", username="", is_anonymous=True)
        return self

    def partition(self, partition: UserPartition) -> TestHost:
        self._partitions.append(partition)
        return self

    def group(self, partition_id: int, group_id: int) -> TestHost:
        """The learner's group in a partition (what the host would have assigned)."""
        self._groups[partition_id] = group_id
        return self

    def with_state(self, state: Any) -> TestHost:
        self.state_json = json.dumps(state)
        return self

    def with_tallies(self, tallies: dict[str, int]) -> TestHost:
        self.stored_tallies = dict(tallies)
        return self

    def child_fragment(self, usage_id: str, fragment: Fragment) -> TestHost:
        self._child_fragments[usage_id] = fragment
        return self

    def selection(self, picked: Iterable[str]) -> TestHost:
        """The children the host's sampling authority picks (default: the first ones)."""
        self._selection = list(picked)
        return self

    def source_block(self, usage_id: str, block_type: str, state: Any = None) -> TestHost:
        text = None if state is None else json.dumps(state)
        self._sources[usage_id] = Source(block_type=block_type, state=text)
        return self

    def with_client_assets(self, names: Iterable[str]) -> TestHost:
        """The plugin's shipped client files: renders are checked to add only these."""
        self._client_assets = list(names)
        return self

    # Driving a block, as the host's calls do.

    def _call(self, run):
        """One call, as the host makes it: its writes are kept only if it succeeds, and
        the selection may be asked for once."""
        saved = (dict(self.tags), self.state_json, dict(self.stored_tallies), len(self.events))
        self._selected = None
        self._events_before = len(self.events)
        self._event_bytes = 0
        self._tag_writes = 0
        try:
            return run()
        except BaseException:
            self.tags, self.state_json, self.stored_tallies = saved[0], saved[1], saved[2]
            del self.events[saved[3]:]
            raise

    def render(self, block: type[Block], view: View) -> Fragment:
        def run() -> Fragment:
            fragment = block(self).render(view)
            if not isinstance(fragment, Fragment):
                raise BlockError(f"render answered {type(fragment).__name__}, not a Fragment")
            if self._client_assets is not None:
                _check_client(fragment, self._client_assets)
            return fragment

        return self._call(run)

    def visible_children(self, block: type[Block]) -> list[str]:
        return self._call(lambda: list(block(self).visible_children()))

    def validate(self, block: type[Block]) -> list[ValidationMessage]:
        try:
            instance = block(self)
        except FieldsError as e:
            return [ValidationMessage.error(str(e))]
        return list(instance.validate())

    def handle(self, block: type[Block], name: str, payload: Any) -> Any:
        # The host hands over JSON text and takes JSON text back (no NaN in either).
        payload = _strict_json(json.dumps(payload, allow_nan=False), "the payload")

        def run() -> Any:
            answer = block(self).handle(name, payload)
            return _strict_json(json.dumps(answer, allow_nan=False), f"handler {name!r}'s answer")

        return self._call(run)

    def tag(self, scope: TagScope, key: str) -> Optional[str]:
        return self.tags.get((scope, key))

    @property
    def state(self) -> Any:
        return None if self.state_json is None else json.loads(self.state_json)

    # The HostApi the block calls.

    def current_user(self) -> User:
        return self._user

    def course_key(self) -> str:
        return self._course_key

    def usage_id(self) -> str:
        return self._usage_id

    def block_type(self) -> str:
        return self._block_type

    def fields_json(self) -> str:
        return json.dumps(self._fields)

    def children(self) -> list[str]:
        return list(self._children)

    def get_tag(self, scope: TagScope, key: str) -> Optional[str]:
        _check_key(key)
        return self.tags.get((scope, key))

    def set_tag(self, scope: TagScope, key: str, value: str) -> None:
        _check_key(key)
        size = len(value.encode())
        if size > MAX_TAG_VALUE_BYTES:
            raise HostError(
                "invalid_input",
                f"value of tag {json.dumps(key)} is {size} bytes, over the limit of {MAX_TAG_VALUE_BYTES}",
            )
        if "\0" in value:
            raise HostError("invalid_input", f"value of tag {json.dumps(key)} holds a NUL character")
        if scope is TagScope.COURSE and key.startswith(PARTITION_SERVICE_PREFIX):
            raise HostError(
                "invalid_input",
                f"tag {json.dumps(key)} is kept by the host's partition service: blocks may read it, not write it",
            )
        keys = sum(1 for (s, _) in self.tags if s is scope)
        if (scope, key) not in self.tags and keys >= MAX_TAG_KEYS:
            kind = "course" if scope is TagScope.COURSE else "global"
            raise HostError("limit_exceeded", f"a user may have at most {MAX_TAG_KEYS} {kind} tag keys")
        if self._tag_writes >= MAX_TAG_WRITES:
            raise HostError("limit_exceeded", f"a request may write at most {MAX_TAG_WRITES} tags")
        self._tag_writes += 1
        self.tags[(scope, key)] = value

    def partitions(self) -> list[UserPartition]:
        return list(self._partitions)

    def group_for(self, partition_id: int) -> Optional[Group]:
        partition = next((p for p in self._partitions if p.id == partition_id), None)
        if partition is None:
            raise HostError("not_found", f"user partition {partition_id}")
        group_id = self._groups.get(partition_id)
        return None if group_id is None else partition.group(group_id)

    def render_child(self, usage_id: str, view: View, condition: Optional[Condition]) -> Fragment:
        if usage_id not in self._children:
            raise HostError(
                "not_found", f"{json.dumps(usage_id)} is not a child of {json.dumps(self._usage_id)}"
            )
        self.rendered_children.append(ChildRender(usage_id, view, condition))
        return self._child_fragments.get(usage_id, Fragment(f"<p>{usage_id}</p>"))

    def get_state(self) -> Optional[str]:
        return self.state_json

    def set_state(self, json_text: str) -> None:
        _strict_json(json_text, "the state")
        self.state_json = json_text

    def publish(self, name: str, json_text: str) -> None:
        # The host's checks, in its order and with its words. Its budgets are per request:
        # a page's blocks (and a block's children) share them; here one call is a request.
        if not 1 <= len(name.encode()) <= 255:
            raise HostError("invalid_input", f"event name must be 1 to 255 bytes, not {len(name.encode())}")
        if name in _HOST_OWNED_EVENTS or name.startswith(_HOST_OWNED_PREFIXES):
            raise HostError(
                "invalid_input", f"event {json.dumps(name)} is the host's own: blocks may not send it"
            )
        size = len(json_text.encode())
        if size > MAX_EVENT_BYTES:
            raise HostError(
                "limit_exceeded",
                f"event {json.dumps(name)} data is {size} bytes, over the limit of {MAX_EVENT_BYTES}",
            )
        data = _strict_json(json_text, f"event {json.dumps(name)} data")
        total = size + len(name.encode())
        if self._event_bytes + total > MAX_REQUEST_EVENT_BYTES:
            raise HostError(
                "limit_exceeded", f"a request may publish at most {MAX_REQUEST_EVENT_BYTES} bytes of events"
            )
        self._event_bytes += total
        if len(self.events) - self._events_before >= MAX_EVENTS:
            raise HostError("limit_exceeded", f"a request may publish at most {MAX_EVENTS} events")
        self.events.append((name, data))

    def tallies(self) -> list[tuple[str, int]]:
        return sorted(self.stored_tallies.items(), key=lambda kv: kv[0].encode())

    def add_tally(self, key: str, amount: int) -> int:
        _check_key(key)
        if key not in self.stored_tallies and len(self.stored_tallies) >= MAX_TALLY_KEYS:
            raise HostError(
                "limit_exceeded",
                f"block {json.dumps(self._usage_id)} has {MAX_TALLY_KEYS} tally keys, "
                "the most a block may have",
            )
        now = self.stored_tallies.get(key, 0)
        after = now + amount
        if not -(2**63) <= after < 2**63:
            raise HostError("invalid_input", f"tally {json.dumps(key)} would overflow: {now} + {amount}")
        self.stored_tallies[key] = after
        return after

    def selected_children(self, count: int) -> list[str]:
        if self._selected is not None and self._selected != count:
            raise HostError(
                "invalid_input",
                f"the selection was asked for with {self._selected} in this call: one count per call",
            )
        self._selected = count
        pool = self._selection if self._selection is not None else self._children
        picked = pool[:count]
        return [c for c in self._children if c in picked]

    def source(self, usage_id: str) -> Source:
        listed = self._fields.get("sources")
        if not isinstance(listed, list) or usage_id not in listed:
            raise HostError(
                "invalid_input",
                f"block {json.dumps(self._usage_id)} does not list {json.dumps(usage_id)} "
                "in its sources field",
            )
        if usage_id not in self._sources:
            raise HostError("not_found", f"no block {json.dumps(usage_id)} in the course")
        return self._sources[usage_id]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _strict_json(text: str, what: str) -> Any:
    """JSON as the host's parser reads it: no NaN or Infinity."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as e:
        raise HostError("invalid_input", f"{what} is not JSON: {e}") from None


def _check_key(key: str) -> None:
    if not key:
        raise HostError("invalid_input", "tag key is empty")
    size = len(key.encode())
    if size > MAX_TAG_KEY_BYTES:
        raise HostError(
            "invalid_input", f"tag key is {size} bytes, over the limit of {MAX_TAG_KEY_BYTES}"
        )
    if any(unicodedata.category(c) == "Cc" for c in key):
        raise HostError("invalid_input", f"tag key {json.dumps(key)} contains a control character")


def _check_client(fragment: Fragment, shipped: list[str]) -> None:
    """The host's checks of a render's client code, for native tests."""
    if len(fragment.resources) > MAX_CLIENT_FILES:
        raise BlockError(
            f"the render adds {len(fragment.resources)} client files, more than {MAX_CLIENT_FILES}"
        )
    for name in fragment.resources:
        if not name.endswith((".css", ".js")):
            raise BlockError(f"client file {json.dumps(name)} is neither a .css nor a .js file")
        if name not in shipped:
            raise BlockError(f"client file {json.dumps(name)} is not among the plugin's files {shipped}")
    if fragment.initialize is not None:
        function, args = fragment.initialize
        if not _JS_IDENTIFIER.match(function):
            raise BlockError(f"initialize_js function {json.dumps(function)} is not a JavaScript identifier")
        if len(args.encode()) > MAX_CLIENT_ARGS_BYTES:
            raise BlockError(
                f"initialize_js args are {len(args.encode())} bytes, over {MAX_CLIENT_ARGS_BYTES}"
            )
