"""Native tests: the block's code runs in plain CPython against TestHost, an in-memory
host with the real host's checks. `pytest` runs them; no wasm needed."""

import json
from pathlib import Path

import pytest

from {{module}} import MAX_ANSWER_BYTES, {{type_name}}
from xbhost_sdk import BlockError, FieldsError, View
from xbhost_sdk.testing import TestHost

_HERE = Path(__file__).parent


def host() -> TestHost:
    """A host that, as the real one, refuses a render naming a file `static/` lacks."""
    shipped = sorted(p.name for p in (_HERE / "static").iterdir())
    return TestHost("{{name}}", "{{name}}_1").with_client_assets(shipped)


def test_greets_the_learner_with_the_authored_greeting_escaped():
    page = host().username("ada").fields({"greeting": "Hi <there>"}).render({{type_name}}, View.STUDENT)
    assert "Hi &lt;there&gt;, ada!" in page.html
    assert '<form class="ask">' in page.html
    assert "You answered" not in page.html
    assert page.resources == ["block.css", "block.js"]
    assert page.initialize == ("{{type_name}}Block", '{"answers": 0}')


def test_its_scenarios_render():
    scenarios = json.loads((_HERE / "scenarios.json").read_text())
    assert scenarios
    for scenario in scenarios:
        for block in scenario["blocks"]:
            host().fields(block.get("fields", {})).render({{type_name}}, View.STUDENT)


def test_keeps_the_answer_for_the_learner_and_shows_it():
    h = host().username("ada")
    assert h.handle({{type_name}}, "answer", {"answer": ["Fine, <thanks>"]}) == {
        "answer": "Fine, <thanks>",
        "answers": 1,
    }
    page = h.render({{type_name}}, View.STUDENT)
    assert "You answered: Fine, &lt;thanks&gt;" in page.html
    assert page.initialize[1] == '{"answers": 1}'
    assert h.events == [("{{name}}.answered", {"answer": "Fine, <thanks>"})]


@pytest.mark.parametrize("payload", [{}, {"text": ""}, {"text": "x" * (MAX_ANSWER_BYTES + 1)}, "text"])
def test_refuses_what_it_cannot_keep(payload):
    h = host()
    with pytest.raises(BlockError):
        h.handle({{type_name}}, "answer", payload)
    with pytest.raises(BlockError, match="no handler"):
        h.handle({{type_name}}, "other", {})
    assert h.state_json is None, "nothing refused is stored"


def test_a_misspelt_field_is_an_error():
    with pytest.raises(FieldsError):
        host().fields({"greting": "Hi"}).render({{type_name}}, View.STUDENT)
