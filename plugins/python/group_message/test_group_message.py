"""group_message natively, against the SDK's TestHost."""

from group_message import GroupMessage
from xbhost_sdk import Group, Severity, UserPartition, View
from xbhost_sdk.testing import TestHost

TONE = UserPartition(id=3, name="Tone", groups=(Group(0, "Plain"), Group(1, "Warm")))
FIELDS = {"user_partition_id": 3, "messages": {"0": "Read chapter 2.", "1": "You are doing great <3"}}


def host() -> TestHost:
    return TestHost("group_message", "msg1").fields(FIELDS).partition(TONE)


def test_a_learner_reads_their_groups_message_and_the_reading_is_an_event():
    h = host().group(3, 1)
    page = h.render(GroupMessage, View.STUDENT)
    assert page.html == '<p class="group-message">You are doing great &lt;3</p>'
    assert h.events == [("xblock.group_message.shown", {"group": 1})]


def test_no_group_reads_the_default_or_nothing():
    assert host().render(GroupMessage, View.STUDENT).hidden
    h = host().fields({**FIELDS, "default_message": "Welcome."})
    assert "Welcome." in h.render(GroupMessage, View.STUDENT).html
    assert h.events == [("xblock.group_message.shown", {"group": None})]


def test_staff_read_every_condition_headed_by_its_group():
    h = host().staff()
    html = h.render(GroupMessage, View.STAFF).html
    assert html.index("<h4>Plain</h4><p>Read chapter 2.</p>") < html.index("<h4>Warm</h4>")
    assert h.events == []


def test_validation_names_what_is_wrong():
    assert [m.severity for m in host().validate(GroupMessage)] == []
    h = TestHost("group_message", "msg1").fields({"user_partition_id": 3, "messages": {"7": "x"}}).partition(TONE)
    messages = h.validate(GroupMessage)
    assert messages[0].severity is Severity.WARNING and "group 7" in messages[0].text
    assert {m.severity for m in messages[1:]} == {Severity.INFO}
    [missing] = TestHost("group_message", "msg1").fields({"user_partition_id": 9}).validate(GroupMessage)
    assert missing.severity is Severity.ERROR and "no user partition 9" in missing.text
    [fields] = TestHost("group_message", "msg1").fields({}).validate(GroupMessage)
    assert "missing field `user_partition_id`" in fields.text
