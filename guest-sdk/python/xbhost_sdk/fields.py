"""Authored fields, typed: a block declares them as a dataclass and gets an instance, or an
error naming the field at fault (its path, such as `prompts[0].label`), never a dict that
fails later. Keys the dataclass does not declare are ignored, as the Rust SDK's serde does,
unless the dataclass is marked `@deny_unknown_fields` (serde's `deny_unknown_fields`), when a
misspelt field is an error; a field typed `Optional[...]` may be left out, as serde's
`Option`, and is then `None`."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Union

FIELDS_MISMATCH = "do not match its schema"
"""In the text of every fields error; the host refuses such a course when it loads it (the
block's `validate` returns the error), as it does for Rust blocks."""


class FieldsError(Exception):
    """Authored fields that do not fit the block's declared `Fields`."""

    def __init__(self, path: str, problem: str):
        super().__init__(problem)
        self.path = path
        self.problem = problem


_DENY_UNKNOWN = "__xbhost_deny_unknown_fields__"


def deny_unknown_fields(cls: type) -> type:
    """Marks a fields dataclass so that a key it does not declare is an error naming the
    key (as serde's `#[serde(deny_unknown_fields)]`): a misspelt field is caught when the
    course loads instead of silently taking its default."""
    setattr(cls, _DENY_UNKNOWN, True)
    return cls


def _is_optional(hint: Any) -> bool:
    return typing.get_origin(hint) in (Union, types.UnionType) and type(None) in typing.get_args(hint)


@dataclasses.dataclass
class NoFields:
    """The fields of a block that declares none."""


def parse_fields(schema: type, raw: str, block_type: str, usage_id: str) -> Any:
    """Parses the host's JSON text of the fields into `schema` (a dataclass)."""
    try:
        try:
            value = json.loads(raw)
        except ValueError as e:
            raise FieldsError("", f"not JSON: {e}") from None
        try:
            return convert(schema, value, "")
        except TypeError as e:
            raise _schema_error(e, "") from None
    except FieldsError as e:
        at = "the fields as a whole" if not e.path else f"field `{e.path}`"
        raise FieldsError(
            e.path,
            f"fields of {block_type} block {json.dumps(usage_id)} {FIELDS_MISMATCH}: "
            f"{at}: {e.problem}",
        ) from None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{json.dumps(value)}`"
    if isinstance(value, (int, float)):
        return f"number `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)[:60]}"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _join(path: str, key: str) -> str:
    return key if not path else f"{path}.{key}"


def convert(target: Any, value: Any, path: str) -> Any:
    """`value` (parsed JSON) as `target` (a type annotation), or a `FieldsError` at `path`."""
    if target is Any:
        return value
    origin = typing.get_origin(target)
    if origin in (Union, types.UnionType):
        options = typing.get_args(target)
        if value is None and type(None) in options:
            return None
        real = [o for o in options if o is not type(None)]
        if len(real) == 1:
            # Optional[T]: T's own error, with its own path.
            return convert(real[0], value, path)
        problems = []
        for option in real:
            try:
                return convert(option, value, path)
            except FieldsError as e:
                problems.append(e.problem)
        raise FieldsError(path, " or ".join(problems))
    if origin is typing.Literal:
        allowed = typing.get_args(target)
        if any(value == a and type(value) is type(a) for a in allowed):
            return value
        raise FieldsError(path, f"expected one of {list(allowed)}, found {_kind(value)}")
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise FieldsError(path, f"expected a list, found {_kind(value)}")
        args = typing.get_args(target)
        if origin is tuple and args and args[-1] is not Ellipsis:
            # A fixed-length tuple: one type per place.
            if len(value) != len(args):
                raise FieldsError(path, f"expected a list of {len(args)}, found {len(value)}")
            return tuple(convert(t, v, f"{path}[{i}]") for i, (t, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise FieldsError(path, f"expected an object, found {_kind(value)}")
        args = typing.get_args(target)
        if args and args[0] is not str:
            raise TypeError(f"field `{path}`: a dict's keys are text in JSON: use dict[str, ...]")
        item = args[1] if len(args) == 2 else Any
        return {k: convert(item, v, _join(path, k)) for k, v in value.items()}
    if dataclasses.is_dataclass(target) and isinstance(target, type):
        return _dataclass(target, value, path)
    if target is bool:
        if isinstance(value, bool):
            return value
        raise FieldsError(path, f"expected a boolean, found {_kind(value)}")
    if target is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise FieldsError(path, f"expected an integer, found {_kind(value)}")
    if target is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:
                raise FieldsError(path, f"number `{value}` is too large") from None
        raise FieldsError(path, f"expected a number, found {_kind(value)}")
    if target is str:
        if isinstance(value, str):
            return value
        raise FieldsError(path, f"expected a string, found {_kind(value)}")
    if target in (list, dict):
        return convert(target[Any] if target is list else dict[str, Any], value, path)
    raise TypeError(f"field `{path}` has a type the SDK cannot read from JSON: {target!r}")


def _schema_error(e: TypeError, path: str) -> FieldsError:
    return FieldsError(path, f"the block's fields cannot be read: {e}")


def _dataclass(target: type, value: Any, path: str) -> Any:
    if not isinstance(value, dict):
        raise FieldsError(path, f"expected an object, found {_kind(value)}")
    try:
        hints = typing.get_type_hints(target)
    except Exception as e:
        raise FieldsError(path, f"the block's {target.__name__} cannot be read: {e}") from None
    given = {}
    declared = [f for f in dataclasses.fields(target) if f.init]
    if getattr(target, _DENY_UNKNOWN, False):
        names = [f.name for f in declared]
        unknown = sorted(k for k in value if k not in names)
        if unknown:
            raise FieldsError(
                _join(path, unknown[0]),
                f"unknown field `{unknown[0]}`, expected one of {', '.join(f'`{n}`' for n in names)}",
            )
    for f in declared:
        if f.name in value:
            given[f.name] = convert(hints.get(f.name, Any), value[f.name], _join(path, f.name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            if not _is_optional(hints.get(f.name)):
                raise FieldsError(path, f"missing field `{f.name}`")
            given[f.name] = None
    try:
        return target(**given)
    except (TypeError, ValueError) as e:
        # A `__post_init__` that refuses the values, or a field the SDK cannot give.
        raise FieldsError(path, str(e)) from None
