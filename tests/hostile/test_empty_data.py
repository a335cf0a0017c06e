"""An upstream event whose data is empty (`data:` or `data: ` alone, or white space), named or
not, anywhere in a stream: it carries nothing and is skipped, on every route that relays or
translates a stream (chat completions, /v1/messages native and translated, /v1/responses native
and translated, a stream sent for a whole answer); the client gets the whole text and the call
is metered as usual. It was a 502 or an error event "malformed stream event". One named as a
failure (`event: error`, `response.failed`) is a failure all the same, and free."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.hostile_upstream import (
    SSE,
    Act,
    HostileUpstream,
    anthropic_stream,
    chat_stream,
    responses_stream,
)
from tests.hostile.conftest import KEYS, KINDS, ROUTES, HostileBox
from tests.hostile.test_first_event_errors import FIRST_EVENTS
from tests.hostile.test_split_text import got_text

pytestmark = pytest.mark.timeout(60)
PIECES = ("Hello", ", wor", "ld")
EMPTY = {"empty": b"data:\n\n", "space": b"data: \n\n", "white": b"data:  \t \r\n\r\n"}


def with_empty_data(writes: list[bytes], after: int, empty: bytes) -> list[bytes | float]:
    """The stream's writes with `empty` after its first `after` writes and after its last
    text piece, each in a read of its own (a short pause before and after)."""
    last = len(writes) - 3  # (chat: the finish, the usage, [DONE]; messages: the block's end)
    return [*writes[:after], 0.01, empty, 0.01, *writes[after:last], empty, *writes[last:]]


def assert_whole_and_metered(
    box: HostileBox, email: str, route: str, answer: httpx.Response
) -> None:
    assert answer.status_code == 200, answer.text
    assert "malformed" not in answer.text, answer.text
    assert got_text(route, answer, True) == "".join(PIECES), answer.text
    row = box.last_row(email)
    assert row["status"] == "ok" and row["error_code"] is None, row
    assert 0 < row["cost_nanos"] <= row["hold_nanos"], row
    assert box.open_holds() == 0


@pytest.mark.parametrize("empty", list(EMPTY))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_empty_data_in_the_middle_of_a_stream_is_skipped(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str, empty: str
) -> None:
    email, key = box.new_user("10")
    if kind == "ho":
        writes = with_empty_data(chat_stream(PIECES), 2, EMPTY[empty])
    else:
        writes = with_empty_data(anthropic_stream(PIECES), 3, EMPTY[empty])
    hostile.push(Act(200, writes, SSE))
    assert_whole_and_metered(box, email, route, box.post(key, route, kind, stream=True))


@pytest.mark.parametrize("empty", list(EMPTY))
def test_empty_data_in_the_middle_of_a_native_responses_stream_is_skipped(
    box: HostileBox, hostile: HostileUpstream, empty: str
) -> None:
    email, key = box.new_user("10")
    events = responses_stream(PIECES)  # (the empty data after the first delta, and the last)
    writes: list[bytes | float] = [*events[:4], EMPTY[empty], *events[4:-2], EMPTY[empty],
                                   *events[-2:]]  # fmt: skip
    hostile.push(Act(200, writes, SSE))
    answer = box.post(key, "responses", "hr", stream=True)
    assert_whole_and_metered(box, email, "responses", answer)


@pytest.mark.parametrize("route", ROUTES)
def test_empty_data_in_a_stream_sent_for_a_whole_answer_is_skipped(
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    """A server that streams though it was asked for a whole answer: its stream is read into
    the answer its chunks add up to, the empty data among them passed over."""
    email, key = box.new_user("10")
    writes = chat_stream(PIECES)
    hostile.push(Act(200, [*writes[:2], EMPTY["space"], *writes[2:]], SSE))
    answer = box.post(key, route, "ho", stream=False)
    assert answer.status_code == 200, answer.text
    assert got_text(route, answer, False) == "".join(PIECES), answer.text
    row = box.last_row(email)
    assert row["status"] == "ok" and 0 < row["cost_nanos"] <= row["hold_nanos"], row


# A named event with empty data before the first real one (an `event: message` the SSE default
# names, or any other name): nothing, as a nameless one is.
NAMED = {"message": b"event: message\ndata:\n\n", "ping": b"event: ping\ndata: \n\n"}


# every route from both kinds of provider, and /v1/responses from the native Responses one
CASES = [*((route, kind) for route in ROUTES for kind in KINDS), ("responses", "hr")]


@pytest.mark.parametrize("named", list(NAMED))
@pytest.mark.parametrize(("route", "kind"), CASES)
def test_a_named_event_of_empty_data_before_the_first_event_is_skipped(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str, named: str
) -> None:
    email, key = box.new_user("10")
    writes = {"ho": chat_stream, "ha": anthropic_stream, "hr": responses_stream}[kind](PIECES)
    hostile.push(Act(200, [NAMED[named], *writes], SSE))
    assert_whole_and_metered(box, email, route, box.post(key, route, kind, stream=True))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_an_error_after_a_named_event_of_empty_data_is_still_the_first_event(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str
) -> None:
    """It is no first event: an error event after it is answered unstreamed, a rate limit
    tried on every key once and then a 429, as after a nameless one."""
    email, key = box.new_user("10")
    rate_limit = FIRST_EVENTS["rate_limit"]
    error = rate_limit[0] if kind == "ho" else rate_limit[1]
    hostile.default = Act(200, [NAMED["message"], error], SSE)
    answer = box.post(key, route, kind, stream=True)
    assert answer.status_code == 429, answer.text
    assert "free-models-per-min" in answer.text, answer.text
    assert len(hostile.seen) == KEYS
    assert box.last_row(email)["error_code"] == "rate_limited"


# An event named as an error with empty data says the upstream failed, though not how: a
# failure (free), not a blank to pass over (a stream ending normally after it was charged as ok).
FAILED = {"ho": b"event: error\ndata:\n\n", "ha": b"event: error\ndata: \n\n",
          "hr": b"event: response.failed\ndata: \n\n"}  # fmt: skip


@pytest.mark.parametrize(("route", "kind"), CASES)
@pytest.mark.parametrize("where", ["first", "middle"])
def test_an_error_event_of_empty_data_is_a_failure(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str, where: str
) -> None:
    email, key = box.new_user("10")
    writes = {"ho": chat_stream, "ha": anthropic_stream, "hr": responses_stream}[kind](PIECES)
    at = 0 if where == "first" else 3
    hostile.default = Act(200, [*writes[:at], FAILED[kind], *writes[at:]], SSE)
    answer = box.post(key, route, kind, stream=True)
    if where == "first":  # an error before the first event: answered unstreamed
        assert answer.status_code == 502, answer.text
    row = box.last_row(email)
    assert row["status"] == "error" and row["cost_nanos"] == 0, row
    assert box.open_holds() == 0


@pytest.mark.parametrize("route", ROUTES)
def test_an_error_event_of_empty_data_in_a_stream_sent_for_a_whole_answer_is_a_failure(
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    email, key = box.new_user("10")
    writes = chat_stream(PIECES)
    hostile.default = Act(200, [*writes[:3], FAILED["ho"], *writes[3:]], SSE)
    answer = box.post(key, route, "ho", stream=False)
    assert answer.status_code == 502, answer.text
    row = box.last_row(email)
    assert row["status"] == "error" and row["cost_nanos"] == 0, row
