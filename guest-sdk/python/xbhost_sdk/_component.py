"""The sandbox side: the `HostApi` over the component's imports, and the class
componentize-py exports. Imported only inside a component built by `xbhost block build`
(the generated `wit_world` bindings exist only there); block authors never import it.

Every exception a block raises becomes the call's error text (`render` and `handle` answer
`result<_, string>`), so a Python error is reported by the host, naming the block, instead
of trapping the instance."""

from __future__ import annotations

import json
import traceback
from typing import Any, Callable, Optional, TypeVar

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import children as wit_children
from wit_world.imports import client as wit_client
from wit_world.imports import context as wit_context
from wit_world.imports import events as wit_events
from wit_world.imports import partitions as wit_partitions
from wit_world.imports import selection as wit_selection
from wit_world.imports import sources as wit_sources
from wit_world.imports import tallies as wit_tallies
from wit_world.imports import types as wit
from wit_world.imports import user_state as wit_user_state
from wit_world.imports import user_tags as wit_user_tags

from .block import Block
from .fields import FieldsError
from .types import (
    BlockError,
    Condition,
    Fragment,
    Group,
    HostError,
    Severity,
    Source,
    TagScope,
    User,
    UserPartition,
    ValidationMessage,
    View,
)

T = TypeVar("T")

_KINDS = {
    wit.HostError_InvalidInput: "invalid_input",
    wit.HostError_NotFound: "not_found",
    wit.HostError_LimitExceeded: "limit_exceeded",
    wit.HostError_Internal: "internal",
}
_VIEWS = {wit.View.STUDENT: View.STUDENT, wit.View.STAFF: View.STAFF, wit.View.AUTHOR: View.AUTHOR}
_WIT_VIEWS = {v: k for k, v in _VIEWS.items()}
_SCOPES = {TagScope.COURSE: wit_user_tags.Scope.COURSE, TagScope.USER: wit_user_tags.Scope.USER}
_SEVERITIES = {
    Severity.INFO: wit.Severity.INFO,
    Severity.WARNING: wit.Severity.WARNING,
    Severity.ERROR: wit.Severity.ERROR,
}


def _call(f: Callable[..., T], *args: Any) -> T:
    """An import that answers `result<_, host-error>`: its value, or a `HostError`."""
    try:
        return f(*args)
    except Err as e:
        error = e.value
        raise HostError(_KINDS.get(type(error), "internal"), str(getattr(error, "value", error))) from None


def _group(g: Optional[wit.Group]) -> Optional[Group]:
    return None if g is None else Group(id=g.id, name=g.name)


class ComponentHost:
    """`HostApi` over the imports."""

    def current_user(self) -> User:
        u = wit_context.current_user()
        return User(id=u.id, username=u.username, is_staff=u.is_staff, is_anonymous=u.is_anonymous)

    def course_key(self) -> str:
        return wit_context.course_key()

    def usage_id(self) -> str:
        return wit_context.usage_id()

    def block_type(self) -> str:
        return wit_context.block_type()

    def fields_json(self) -> str:
        return wit_context.fields()

    def children(self) -> list[str]:
        return list(wit_context.children())

    def get_tag(self, scope: TagScope, key: str) -> Optional[str]:
        return _call(wit_user_tags.get, _SCOPES[scope], key)

    def set_tag(self, scope: TagScope, key: str, value: str) -> None:
        _call(wit_user_tags.set, _SCOPES[scope], key, value)

    def partitions(self) -> list[UserPartition]:
        return [
            UserPartition(
                id=p.id,
                name=p.name,
                groups=tuple(Group(id=g.id, name=g.name) for g in p.groups),
                description=p.description,
                scheme=p.scheme,
                active=p.active,
            )
            for p in wit_partitions.all()
        ]

    def group_for(self, partition_id: int) -> Optional[Group]:
        return _group(_call(wit_partitions.group_for, partition_id))

    def render_child(self, usage_id: str, view: View, condition: Optional[Condition]) -> Fragment:
        marked = None if condition is None else wit.Condition(condition.partition_id, condition.group_id)
        f = _call(wit_children.render_child, usage_id, _WIT_VIEWS[view], marked)
        return Fragment(html=f.html, hidden=f.hidden, title=f.title, icon=f.icon, tooltip=f.tooltip)

    def get_state(self) -> Optional[str]:
        return _call(wit_user_state.get)

    def set_state(self, json_text: str) -> None:
        _call(wit_user_state.set, json_text)

    def publish(self, name: str, json_text: str) -> None:
        _call(wit_events.publish, name, json_text)

    def tallies(self) -> list[tuple[str, int]]:
        return [(k, v) for k, v in _call(wit_tallies.all)]

    def add_tally(self, key: str, amount: int) -> int:
        return _call(wit_tallies.add, key, amount)

    def selected_children(self, count: int) -> list[str]:
        return list(_call(wit_selection.selected, count))

    def source(self, usage_id: str) -> Source:
        s = _call(wit_sources.state_of, usage_id)
        return Source(block_type=s.block_type, state=s.state)


def _describe(e: BaseException) -> str:
    """A block's exception as the host shows it to staff: its type and message, and where
    in the block's own code it was raised."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if "xbhost_sdk" not in f.filename]
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    if isinstance(e, (HostError, FieldsError, BlockError)):
        return f"{e}{where}"
    return f"{type(e).__name__}: {e}{where}"


def _check_fragment(f: Any) -> None:
    """A render's answer as the contract needs it, or a TypeError naming what is wrong
    (converting a wrong value for the host would trap the instance)."""
    if not isinstance(f, Fragment):
        raise TypeError(f"render answered {type(f).__name__}, not a Fragment")
    if not isinstance(f.html, str) or type(f.hidden) is not bool:
        raise TypeError("a Fragment's html is a str and its hidden a bool")
    for name in ("title", "icon", "tooltip"):
        if not isinstance(getattr(f, name), (str, type(None))):
            raise TypeError(f"a Fragment's {name} is a str or None")
    _strings(f.resources, "the Fragment's resources")


def _strings(values: Any, what: str) -> list[str]:
    values = list(values)
    if not all(isinstance(v, str) for v in values):
        raise TypeError(f"{what} must be str values")
    return values


def export(block: type[Block]) -> type:
    """The class componentize-py exports for `block`: each call makes a fresh instance
    over the imports and answers its result or its error text."""
    host = ComponentHost()

    def guarded(f: Callable[[], T]) -> T:
        # Everything a block can raise (SystemExit too) is the call's error: an exception
        # that left the export would trap the instance.
        try:
            return f()
        except Err:
            raise
        except BaseException as e:
            raise Err(_describe(e)) from None

    class Export(exports.Block):
        def render(self, view: wit.View) -> wit.Fragment:
            def run() -> wit.Fragment:
                f = block(host).render(_VIEWS[view])
                _check_fragment(f)
                # Client-side code goes through `client`: the fragment record stays as the
                # contract's 0.1.0 had it.
                for name in f.resources:
                    _call(wit_client.add_resource, name)
                if f.initialize is not None:
                    _call(wit_client.initialize, *f.initialize)
                return wit.Fragment(f.html, f.hidden, f.title, f.icon, f.tooltip)

            return guarded(run)

        def visible_children(self) -> list[str]:
            return guarded(lambda: _strings(block(host).visible_children(), "visible_children"))

        def validate(self) -> list[wit.ValidationMessage]:
            # `validate` has no error channel: whatever goes wrong is an error message.
            try:
                messages = list(block(host).validate())
                for m in messages:
                    if not isinstance(m, ValidationMessage) or not isinstance(m.text, str):
                        raise TypeError(f"validate answered {m!r}, not a ValidationMessage")
                return [wit.ValidationMessage(_SEVERITIES[m.severity], m.text) for m in messages]
            except BaseException as e:
                return [wit.ValidationMessage(wit.Severity.ERROR, _describe(e))]

        def handle(self, name: str, payload: str) -> str:
            def run() -> str:
                try:
                    data = json.loads(payload)
                except ValueError as e:
                    raise ValueError(f"payload of handler {json.dumps(name)} is not JSON: {e}") from None
                return json.dumps(block(host).handle(name, data), allow_nan=False)

            return guarded(run)

    return Export
