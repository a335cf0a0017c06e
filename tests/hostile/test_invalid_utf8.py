"""Bytes that are not UTF-8 inside an upstream's text: in a whole answer they read as U+FFFD, as
they do in a stream (where each event's data is decoded so), and the answer is relayed and
charged; before, a whole answer with them was "a body that is not JSON", a free 502 for an
answer the provider made (and billed)."""

from __future__ import annotations

import pytest

from tests.fakes.hostile_upstream import (
    Act,
    HostileUpstream,
    anthropic_body,
    chat_body,
    responses_body,
)
from tests.hostile.conftest import HostileBox
from tests.hostile.test_split_text import got_text

pytestmark = pytest.mark.timeout(60)
BODIES = {"ho": chat_body, "ha": anthropic_body, "hr": responses_body}
CALLS = [("ho", "chat"), ("ha", "messages"), ("hr", "responses"), ("ha", "chat"),
         ("ho", "messages")]  # fmt: skip


@pytest.mark.parametrize(("kind", "route"), CALLS)
def test_bytes_that_are_not_utf8_in_a_whole_answer_read_as_replacement_characters(
    box: HostileBox, hostile: HostileUpstream, kind: str, route: str
) -> None:
    email, key = box.new_user("10")
    hostile.push(Act(200, [BODIES[kind]().replace(b"Hello", b"Hel\xff\xfelo")]))
    answer = box.post(key, route, kind, stream=False)
    assert answer.status_code == 200, answer.text
    assert got_text(route, answer, False).startswith("Hel\ufffd\ufffdlo"), answer.text
    row = box.last_row(email)
    assert row["status"] == "ok" and 0 < row["cost_nanos"] <= row["hold_nanos"], row


@pytest.mark.parametrize("route", ["chat", "messages", "responses"])
def test_bytes_that_are_not_utf8_in_a_whole_answer_to_a_stream_read_so_too(
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    """A compatible server that answers a stream request with one JSON answer (SGLang with
    tools, a buffering proxy): the answer is the stream it stands for, its text as above."""
    email, key = box.new_user("10")
    hostile.push(Act(200, [chat_body().replace(b"Hello", b"Hel\xff\xfelo")]))
    answer = box.post(key, route, "ho", stream=True)
    assert answer.status_code == 200, answer.text
    assert got_text(route, answer, True).startswith("Hel\ufffd\ufffdlo"), answer.text
    row = box.last_row(email)
    assert row["status"] == "ok" and 0 < row["cost_nanos"] <= row["hold_nanos"], row
