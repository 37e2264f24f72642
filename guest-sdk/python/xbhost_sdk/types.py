"""The values blocks and the host exchange, as plain Python: the SDK's own types, so a
block never sees the generated bindings."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Optional


class View(Enum):
    """Which audience a block renders for."""

    STUDENT = "student"
    """A learner: sees only what their groups allow."""
    STAFF = "staff"
    """Course staff: see every condition of an experiment, clearly marked."""
    AUTHOR = "author"
    """Course authors: see structure and validation messages."""


class TagScope(Enum):
    """Where a user tag lives."""

    COURSE = "course"
    """Per user per course (the current course)."""
    USER = "user"
    """Global per user."""


class Severity(Enum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class User:
    """The user the current call is for. A block can never name another user."""

    id: str
    username: str
    is_staff: bool = False
    is_anonymous: bool = False


@dataclass(frozen=True)
class Group:
    """One group (experimental condition) of a user partition."""

    id: int
    name: str


@dataclass(frozen=True)
class UserPartition:
    """A named way to split learners into groups (an experiment group configuration)."""

    id: int
    name: str
    groups: tuple[Group, ...] = ()
    description: str = ""
    scheme: str = "random"
    """`random` for experiments; other schemes (such as `cohort`) are never assigned."""
    active: bool = True

    def group(self, group_id: int) -> Optional[Group]:
        return next((g for g in self.groups if g.id == group_id), None)


@dataclass(frozen=True)
class Condition:
    """Marks a child rendered as one condition of an experiment (staff and author views);
    the host looks the group up itself and writes the marks."""

    partition_id: int
    group_id: Optional[int]
    """`None` for a child that no group maps to."""


@dataclass(frozen=True)
class ValidationMessage:
    """A message for course authors, shown in author view."""

    severity: Severity
    text: str

    @staticmethod
    def info(text: str) -> ValidationMessage:
        return ValidationMessage(Severity.INFO, text)

    @staticmethod
    def warning(text: str) -> ValidationMessage:
        return ValidationMessage(Severity.WARNING, text)

    @staticmethod
    def error(text: str) -> ValidationMessage:
        return ValidationMessage(Severity.ERROR, text)


@dataclass(frozen=True)
class Source:
    """Another block as the current learner left it."""

    block_type: str
    state: Optional[str]
    """The learner's state of that block (JSON text), `None` when they have none."""

    def parsed_state(self) -> Any:
        return None if self.state is None else json.loads(self.state)


@dataclass
class Fragment:
    """What a block renders. `Fragment("<p>hi</p>")`, `Fragment.hidden_fragment()`."""

    html: str = ""
    hidden: bool = False
    """Hidden blocks are dropped by their container; a container whose children are all
    hidden is itself hidden."""
    title: Optional[str] = None
    icon: Optional[str] = None
    tooltip: Optional[str] = None
    resources: list[str] = field(default_factory=list)
    """Client files of the plugin (style sheets and scripts), in order."""
    initialize: Optional[tuple[str, str]] = None
    """The script's function the block's frame calls, and its args as JSON text."""

    @staticmethod
    def hidden_fragment() -> Fragment:
        """A hidden fragment: the block shows nothing and its container drops it."""
        return Fragment(hidden=True)

    def add_css(self, name: str) -> Fragment:
        """Adds a style sheet the plugin ships, as XBlock's `add_css`."""
        return self._add_resource(name)

    def add_javascript(self, name: str) -> Fragment:
        """Adds a script the plugin ships, as XBlock's `add_javascript`."""
        return self._add_resource(name)

    def initialize_js(self, function: str, args: Any = None) -> Fragment:
        """Names the function of the block's script the frame calls once its files are
        loaded, as `function(runtime, element, args)` (XBlock's `initialize_js`)."""
        self.initialize = (function, json.dumps(args, allow_nan=False))
        return self

    def _add_resource(self, name: str) -> Fragment:
        if name not in self.resources:
            self.resources.append(name)
        return self


class HostError(Exception):
    """An error the host returned as a value (host calls never trap on bad input). `kind`
    is one of `invalid_input`, `not_found`, `limit_exceeded`, `internal`; the text is the
    host's message, as the Rust SDK shows it."""

    PREFIX = {
        "invalid_input": "invalid input",
        "not_found": "not found",
        "limit_exceeded": "limit exceeded",
        "internal": "host error",
    }

    def __init__(self, kind: str, message: str):
        if kind not in self.PREFIX:
            raise ValueError(f"unknown host error kind {kind!r}")
        super().__init__(f"{self.PREFIX[kind]}: {message}")
        self.kind = kind
        self.message = message


class BlockError(Exception):
    """An error a block raises on purpose. The host shows it to staff and a neutral message
    to learners. Any other exception a block raises is reported the same way."""
