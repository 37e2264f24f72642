"""thumbs_py natively, against the SDK's TestHost (no wasm build)."""

import pytest

from thumbs_block import Thumbs
from xbhost_sdk import BlockError, View
from xbhost_sdk.testing import TestHost


def host() -> TestHost:
    return TestHost("thumbs_py", "thumbs1").with_client_assets(["thumbs.css", "thumbs.js"])


def test_renders_counts_and_its_client_code():
    page = host().with_tallies({"up": 3, "down": 1}).render(Thumbs, View.STUDENT)
    assert '<span class="count">3</span>' in page.html
    assert '<span class="count">1</span>' in page.html
    assert page.resources == ["thumbs.css", "thumbs.js"]
    assert page.initialize == ("ThumbsBlock", '{"voted": null}')
    assert page.title == "Thumbs"


def test_one_vote_per_learner():
    h = host()
    assert h.handle(Thumbs, "vote", {"direction": "up"}) == {"up": 1, "down": 0, "voted": "up"}
    assert h.events == [("xblock.thumbs.voted", {"direction": "up"})]
    with pytest.raises(BlockError, match="already voted up"):
        h.handle(Thumbs, "vote", {"direction": "down"})
    assert h.stored_tallies == {"up": 1}
    page = h.render(Thumbs, View.STUDENT)
    assert 'aria-pressed="true">\N{THUMBS UP SIGN}' in page.html
    assert page.initialize[1] == '{"voted": "up"}'


@pytest.mark.parametrize("bad", [{"direction": "sideways"}, "up", {"direction": "up", "x": 1}, {}])
def test_refuses_other_payloads_and_stores_nothing(bad):
    h = host()
    with pytest.raises(BlockError, match="vote expects"):
        h.handle(Thumbs, "vote", bad)
    assert h.stored_tallies == {} and h.state_json is None and h.events == []


def test_the_prompt_is_escaped():
    page = host().fields({"prompt": "<script>x</script>"}).render(Thumbs, View.STUDENT)
    assert "<script>" not in page.html and "&lt;script&gt;" in page.html
