"""Upstreams whose answer's head never comes to an end: 1xx interim answers (103 Early Hints)
one after another, each within the read timeout, and never the final status."""

from __future__ import annotations

import time

import pytest

from tests.fakes.hostile_upstream import Act, HostileUpstream
from tests.hostile.conftest import ROUTES, HostileBox, assert_free, body_of

pytestmark = pytest.mark.timeout(60)
HINT = b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n"


def test_one_early_hint_before_the_answer_is_passed_over(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """A 103 before the real answer (as a CDN in front of a provider may send) is no answer:
    the call gets the 200 that follows it."""
    _, key = box.new_user("10")
    hostile.push(Act(200, body_of("ho").writes, interim=[HINT, 0.2]))
    answer = box.post(key, "chat", "ho", stream=False)
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == "Hello"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("route", ROUTES)
def test_early_hints_without_end_are_a_timeout_not_a_wait_for_ever(
    box: HostileBox, hostile: HostileUpstream, route: str, stream: bool
) -> None:
    """An upstream that sends a 103 every 0.4 s (within the read timeout of 1 s) for 24 s
    before its answer: the call waited for as long as they came (without end, for ever, its
    hold and a place of the account's concurrency held meanwhile). The head is due within the
    connect timeout and twice the read timeout (3 s here): tried on each key, then a free 504
    in the route's shape."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    hostile.default = Act(200, body_of("ho").writes, interim=[HINT, 0.4] * 60)
    began = time.monotonic()
    answer = box.post(key, route, "ho", stream=stream)
    took = time.monotonic() - began
    assert answer.status_code == 504, answer.text
    assert took < 15, took
    assert_free(box, email, start, "upstream_timeout")
    assert box.open_holds() == 0
