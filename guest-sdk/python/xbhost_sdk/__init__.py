"""xbhost's guest SDK for Python: write a block as a class, test it with pytest in plain
CPython (`xbhost_sdk.testing.TestHost`), build it into a sandboxed component.

The Python counterpart of the Rust SDK (`guest-sdk/`): the same services, the same errors,
the same contract (`wit/block.wit`); the generated bindings stay hidden."""

from .block import Block, handler
from .fields import FIELDS_MISMATCH, FieldsError, NoFields, deny_unknown_fields
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

CONTRACT_VERSION = "0.1.2"
"""The contract (`package xbhost:block@...` of `wit/block.wit`) this SDK is written for."""

__all__ = [
    "Block",
    "BlockError",
    "CONTRACT_VERSION",
    "Condition",
    "FIELDS_MISMATCH",
    "FieldsError",
    "Fragment",
    "Group",
    "HostError",
    "NoFields",
    "Severity",
    "Source",
    "TagScope",
    "User",
    "UserPartition",
    "ValidationMessage",
    "View",
    "deny_unknown_fields",
    "handler",
]
