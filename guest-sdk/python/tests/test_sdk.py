"""The Python SDK and its native test host, through blocks written as an author would."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import pytest

from xbhost_sdk import (
    CONTRACT_VERSION,
    FIELDS_MISMATCH,
    Block,
    BlockError,
    Condition,
    FieldsError,
    Fragment,
    Group,
    HostError,
    Severity,
    TagScope,
    UserPartition,
    ValidationMessage,
    View,
    deny_unknown_fields,
    handler,
)
from xbhost_sdk.fields import convert
from xbhost_sdk.testing import MAX_TALLY_KEYS, TestHost


@dataclass
class Prompt:
    label: str
    weight: float = 1.0


@dataclass
class ThumbsFields:
    question: str = "Did you like it?"
    prompts: list[Prompt] = field(default_factory=list)
    style: Literal["thumbs", "stars"] = "thumbs"
    limit: Optional[int] = None


class Thumbs(Block):
    """A port of the XBlock SDK's thumbs block: votes shared by all learners, one per
    learner."""

    Fields = ThumbsFields

    def render(self, view: View) -> Fragment:
        votes = self.tallies()
        mine = (self.state or {}).get("voted")
        return (
            Fragment(
                f"<p>{self.escape(self.fields.question)}</p>"
                f"<p>{votes.get('up', 0)} up, {votes.get('down', 0)} down</p>"
                + (f"<p>you voted {mine}</p>" if mine else "")
            )
            .add_css("thumbs.css")
            .add_javascript("thumbs.js")
            .initialize_js("ThumbsBlock", {"voted": mine})
        )

    @handler
    def vote(self, payload):
        direction = payload.get("direction")
        if direction not in ("up", "down"):
            raise BlockError(f"a vote is up or down, not {direction!r}")
        if (self.state or {}).get("voted"):
            return {"counted": False}
        self.set_state({"voted": direction})
        self.publish("xblock.thumbs.voted", {"direction": direction})
        return {"counted": True, direction: self.add_tally(direction)}

    @handler("reset-mine")
    def reset(self, payload):
        self.set_state({})
        return {}


@dataclass
class SplitFields:
    user_partition_id: int
    group_id_to_child: dict[str, str] = field(default_factory=dict)


class Split(Block):
    """A split_test in a few lines: the learner's group's child, every condition for staff."""

    Fields = SplitFields

    def _child_of(self, group: Optional[Group]) -> Optional[str]:
        return None if group is None else self.fields.group_id_to_child.get(str(group.id))

    def render(self, view: View) -> Fragment:
        pid = self.fields.user_partition_id
        if view is View.STUDENT:
            child = self._child_of(self.group_for(pid))
            if child is None:
                return Fragment.hidden_fragment()
            return Fragment(self.render_child(child, view).html)
        parts = [
            self.render_condition(child, view, Condition(pid, int(gid))).html
            for gid, child in self.fields.group_id_to_child.items()
        ]
        return Fragment("".join(parts))

    def visible_children(self) -> list[str]:
        child = self._child_of(self.group_for(self.fields.user_partition_id))
        return [] if child is None else [child]

    def validate(self) -> list[ValidationMessage]:
        partition = self.partition(self.fields.user_partition_id)
        if partition is None:
            return [ValidationMessage.error(f"no user partition {self.fields.user_partition_id}")]
        return []


EXPERIMENT = UserPartition(id=7, name="Which intro", groups=(Group(0, "A"), Group(1, "B")))


def split_host() -> TestHost:
    return (
        TestHost("split_test", "split_1")
        .fields({"user_partition_id": 7, "group_id_to_child": {"0": "intro_a", "1": "intro_b"}})
        .with_children(["intro_a", "intro_b"])
        .partition(EXPERIMENT)
    )


def test_a_vote_is_counted_once_per_learner_and_sent_as_an_event():
    host = TestHost("thumbs", "thumbs_1").fields({"question": "Good <b>?"})
    assert host.handle(Thumbs, "vote", {"direction": "up"}) == {"counted": True, "up": 1}
    assert host.handle(Thumbs, "vote", {"direction": "up"}) == {"counted": False}
    assert host.stored_tallies == {"up": 1}
    assert host.state == {"voted": "up"}
    assert host.events == [("xblock.thumbs.voted", {"direction": "up"})]
    page = host.render(Thumbs, View.STUDENT)
    assert "Good &lt;b&gt;?" in page.html
    assert "1 up, 0 down" in page.html and "you voted up" in page.html
    assert page.resources == ["thumbs.css", "thumbs.js"]
    assert page.initialize == ("ThumbsBlock", '{"voted": "up"}')


def test_handlers_are_found_by_name_and_an_unknown_one_is_an_error():
    assert Thumbs.handlers() == {"vote": "vote", "reset-mine": "reset"}
    host = TestHost("thumbs", "thumbs_1").with_state({"voted": "down"})
    assert host.handle(Thumbs, "reset-mine", {}) == {}
    assert host.state == {}
    with pytest.raises(BlockError, match='no handler named "nope"'):
        host.handle(Thumbs, "nope", {})
    with pytest.raises(BlockError, match="up or down"):
        host.handle(Thumbs, "vote", {"direction": "sideways"})


def test_fields_are_typed_and_a_mismatch_names_the_field():
    host = TestHost("thumbs", "thumbs_1").fields(
        {"prompts": [{"label": "ok", "weight": 2}], "limit": 3, "unknown": "ignored"}
    )
    block = Thumbs(host)
    assert block.fields == ThumbsFields(prompts=[Prompt("ok", 2.0)], limit=3)
    assert type(block.fields.prompts[0].weight) is float
    for fields, at, problem in [
        ({"prompts": [{"label": 3}]}, "field `prompts[0].label`", "expected a string, found number `3`"),
        ({"prompts": [{}]}, "field `prompts[0]`", "missing field `label`"),
        ({"style": "hearts"}, "field `style`", "expected one of ['thumbs', 'stars']"),
        ({"limit": True}, "field `limit`", "expected an integer, found boolean `true`"),
        ({"question": None}, "field `question`", "expected a string, found null"),
    ]:
        with pytest.raises(FieldsError) as e:
            Thumbs(TestHost("thumbs", "thumbs_1").fields(fields))
        text = str(e.value)
        assert text.startswith(f'fields of thumbs block "thumbs_1" {FIELDS_MISMATCH}: {at}: '), text
        assert problem in text, text
    with pytest.raises(FieldsError, match="missing field `user_partition_id`"):
        Split(TestHost("split_test", "split_1"))
    # validate answers the error instead, so the host refuses the course at load.
    [message] = TestHost("split_test", "split_1").validate(Split)
    assert message.severity is Severity.ERROR and FIELDS_MISMATCH in message.text


def test_a_learner_sees_only_their_groups_child_and_staff_see_every_condition():
    host = split_host().group(7, 1)
    page = host.render(Split, View.STUDENT)
    assert page.html == "<p>intro_b</p>"
    assert host.visible_children(Split) == ["intro_b"]
    staff = split_host().staff()
    staff.render(Split, View.STAFF)
    assert [(c.usage_id, c.condition) for c in staff.rendered_children] == [
        ("intro_a", Condition(7, 0)),
        ("intro_b", Condition(7, 1)),
    ]
    # No group (an inactive partition, say): nothing shown, and the container drops it.
    assert split_host().render(Split, View.STUDENT).hidden
    assert split_host().visible_children(Split) == []
    assert split_host().validate(Split) == []


def test_host_errors_arrive_as_exceptions_with_the_hosts_message():
    host = split_host().fields({"user_partition_id": 99})
    with pytest.raises(HostError) as e:
        host.render(Split, View.STUDENT)
    assert e.value.kind == "not_found" and str(e.value) == "not found: user partition 99"
    assert host.validate(Split) == [ValidationMessage.error("no user partition 99")]
    block = Thumbs(TestHost("thumbs", "t"))
    with pytest.raises(HostError, match="tag key is empty"):
        block.course_tag("")
    with pytest.raises(HostError, match="256 bytes, over the limit of 255"):
        block.set_user_tag("k" * 256, "v")
    with pytest.raises(HostError, match="not a child"):
        block.render_child("stranger", View.STUDENT)
    with pytest.raises(HostError, match="the host's own"):
        block.publish("xmodule.partitions.assigned_user_to_partition", {})
    with pytest.raises(HostError, match="does not list"):
        block.source("problem_1")


def test_tags_state_tallies_selection_and_sources():
    host = (
        TestHost("probe", "probe_1")
        .fields({"sources": ["problem_1"]})
        .with_children(["a", "b", "c"])
        .selection(["c", "a"])
        .source_block("problem_1", "problem", {"score": 1})
        .with_tallies({"x": 2})
    )
    block = Block(host)
    block.set_course_tag("seen", "yes")
    block.set_user_tag("lang", "fr")
    assert host.tag(TagScope.COURSE, "seen") == "yes" and block.user_tag("lang") == "fr"
    assert block.course_tag("lang") is None
    assert block.selected_children(2) == ["a", "c"]
    with pytest.raises(HostError, match="one count per call"):
        block.selected_children(1)
    source = block.source("problem_1")
    assert source.block_type == "problem" and source.parsed_state() == {"score": 1}
    assert block.add_tally("x", -3) == -1 and block.tallies() == {"x": -1}
    for i in range(MAX_TALLY_KEYS - 1):
        block.add_tally(f"k{i}")
    with pytest.raises(HostError) as e:
        block.add_tally("one-too-many")
    assert e.value.kind == "limit_exceeded"
    assert block.add_tally("x", 2**63 - 1) == 2**63 - 2
    with pytest.raises(HostError, match="overflow"):
        block.add_tally("x", 2)
    assert block.visible_children() == ["a", "b", "c"]


def test_client_code_is_checked_as_the_host_checks_it():
    shipped = TestHost("thumbs", "t").with_client_assets(["thumbs.css", "thumbs.js"])
    assert shipped.render(Thumbs, View.STUDENT).resources == ["thumbs.css", "thumbs.js"]
    missing = TestHost("thumbs", "t").with_client_assets(["thumbs.css"])
    with pytest.raises(BlockError, match='"thumbs.js" is not among'):
        missing.render(Thumbs, View.STUDENT)

    class BadInit(Block):
        def render(self, view):
            return Fragment("x").initialize_js("not an identifier")

    with pytest.raises(BlockError, match="not a JavaScript identifier"):
        TestHost("bad", "b").with_client_assets([]).render(BadInit, View.STUDENT)


def test_the_sdk_is_written_for_the_contract_in_wit():
    wit = Path(__file__).resolve().parents[3] / "wit" / "block.wit"
    declared = re.search(r"package xbhost:block@([0-9.]+);", wit.read_text()).group(1)
    assert CONTRACT_VERSION == declared


def test_a_failed_call_keeps_nothing_and_only_json_leaves_a_block():
    class Careless(Block):
        @handler
        def spend(self, payload):
            self.set_course_tag("spent", "yes")
            self.add_tally("spent", 1)
            self.publish("xblock.careless.spent", {})
            raise BlockError("and then it failed")

        @handler
        def nan(self, payload):
            self.set_state({"score": float("nan")})

    host = TestHost("careless", "c1")
    with pytest.raises(BlockError):
        host.handle(Careless, "spend", {})
    assert host.tags == {} and host.stored_tallies == {} and host.events == []
    with pytest.raises(ValueError):
        host.handle(Careless, "nan", {})
    assert host.state_json is None
    with pytest.raises(HostError, match="not JSON"):
        host.set_state("NaN")


@dataclass
class Exact:
    pair: tuple[int, str] = (0, "")
    flag: Literal[1, 2] = 1
    nested: Optional[Prompt] = None

    def __post_init__(self):
        if self.flag == 2 and not self.nested:
            raise ValueError("flag 2 needs nested")


class ExactBlock(Block):
    Fields = Exact

    def render(self, view):
        return Fragment("")


@dataclass
class IntKeys:
    by_id: dict[int, str] = field(default_factory=dict)


class IntKeysBlock(Block):
    Fields = IntKeys


@pytest.mark.parametrize(
    "fields, at, problem",
    [
        ({"pair": [1]}, "field `pair`", "expected a list of 2, found 1"),
        ({"pair": [1, 2]}, "field `pair[1]`", "expected a string"),
        ({"flag": True}, "field `flag`", "expected one of [1, 2]"),
        ({"nested": {"label": 3}}, "field `nested.label`", "expected a string"),
        ({"flag": 2}, "the fields as a whole", "flag 2 needs nested"),
    ],
)
def test_fields_are_read_as_exactly_as_the_rust_sdk_reads_them(fields, at, problem):
    with pytest.raises(FieldsError) as e:
        ExactBlock(TestHost("exact", "e1").fields(fields))
    assert f"{FIELDS_MISMATCH}: {at}: " in str(e.value) and problem in str(e.value), str(e.value)
    assert ExactBlock(TestHost("exact", "e1").fields({"pair": [2, "b"]})).fields.pair == (2, "b")


def test_a_schema_json_cannot_fill_is_a_fields_error_the_host_refuses():
    with pytest.raises(FieldsError, match="dict\\[str"):
        IntKeysBlock(TestHost("keys", "k1").fields({"by_id": {"1": "a"}}))


@deny_unknown_fields
@dataclass
class StrictFields:
    greeting: str = "Hello"
    note: Optional[str] = None


@dataclass
class LaxFields:
    note: Optional[str]
    size: int = 1


def test_strict_fields_name_a_misspelt_key_and_optional_fields_may_be_left_out():
    assert convert(StrictFields, {"greeting": "Hi"}, "") == StrictFields("Hi", None)
    with pytest.raises(FieldsError) as e:
        convert(StrictFields, {"greting": "Hi"}, "")
    assert e.value.path == "greting"
    assert "unknown field `greting`, expected one of `greeting`, `note`" in str(e.value)
    with pytest.raises(FieldsError, match="unknown field `x`"):
        convert(list[StrictFields], [{}, {"x": 1}], "")
    # Unmarked dataclasses ignore unknown keys, and an Optional without a default is None
    # when left out (serde's Option), while other fields stay required.
    assert convert(LaxFields, {"other": 1}, "") == LaxFields(None, 1)
    with pytest.raises(FieldsError, match="missing field `label`"):
        convert(Prompt, {}, "")


def test_the_test_host_refuses_what_the_host_refuses_of_tags_and_events():
    class Writer(Block):
        def render(self, view):
            return Fragment("")

        @handler
        def write(self, payload):
            kind = payload["kind"]
            if kind == "partition":
                self.set_course_tag("xblock.partition_service.partition_7", "1")
            elif kind == "holdout":
                self.set_course_tag("xblock.partition_service.holdout", "held_out")
            elif kind == "long":
                self.set_course_tag("k", "x" * 1025)
            elif kind == "nul":
                self.set_user_tag("k", "a\0b")
            elif kind == "big-event":
                self.publish("w.big", {"pad": "x" * (16 << 10)})
            elif kind == "many-events":
                for i in range(payload.get("n", 101)):
                    self.publish("w.many", {"i": i})
            elif kind == "event-bytes":
                for _ in range(17):
                    self.publish("w.pad", {"pad": "x" * ((16 << 10) - 16)})
            elif kind == "control-key":
                self.set_course_tag("a\nb", "1")
            elif kind == "many-writes":
                for i in range(101):
                    self.set_course_tag(f"k{i % 3}", str(i))
            return {}

    host = TestHost("writer", "w1")
    for kind, said in [
        ("partition", "kept by the host's partition service"),
        ("holdout", "kept by the host's partition service"),
        ("long", "over the limit of 1024"),
        ("nul", "NUL"),
        ("big-event", "over the limit of 16384"),
        ("many-events", "a request may publish at most 100 events"),
        ("event-bytes", "at most 262144 bytes of events"),
        ("control-key", "contains a control character"),
        ("many-writes", "a request may write at most 100 tags"),
    ]:
        with pytest.raises(HostError, match=said):
            host.handle(Writer, "write", {"kind": kind})
        assert host.tags == {} and host.events == [], kind
    # Each call is a request of its own, with its own budget.
    host.handle(Writer, "write", {"kind": "many-events", "n": 60})
    host.handle(Writer, "write", {"kind": "many-events", "n": 60})
    assert len(host.events) == 120
    assert Writer.handlers() == {"write": "write"}
