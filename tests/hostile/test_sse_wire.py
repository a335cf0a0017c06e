"""Upstream streams written in the other legal ways of the SSE format (WHATWG HTML, server-sent
events): a UTF-8 byte order mark first, CR or CRLF line ends, `data:` with no space, comments
and `id:`/`retry:` fields, no blank line after the last event, every byte in a read of its own,
an empty `data:` (or white space alone) before the first event. On every route, from both kinds
of provider, the client gets the whole text and the call settles as any other."""

from __future__ import annotations

import json

import pytest

from tests.fakes.hostile_upstream import (
    SSE,
    Act,
    HostileUpstream,
    anthropic_event,
    anthropic_stream,
    chat_chunk,
    chat_stream,
    responses_stream,
    sse,
)
from tests.hostile.conftest import EVENT_LIMIT, KINDS, ROUTES, HostileBox, stream_of
from tests.hostile.test_first_event_errors import FIRST_EVENTS
from tests.hostile.test_split_text import got_text

pytestmark = pytest.mark.timeout(60)
PIECES = ("Hello", ", wor", "ld")


def crlf(body: bytes) -> bytes:
    return body.replace(b"\n", b"\r\n")


def lone_cr(body: bytes) -> bytes:
    return body.replace(b"\n", b"\r")


def bom(body: bytes) -> bytes:
    return b"\xef\xbb\xbf" + body


def no_space(body: bytes) -> bytes:
    return body.replace(b"data: ", b"data:").replace(b"event: ", b"event:")


def chatter(body: bytes) -> bytes:
    return b": hello\n\n" + body.replace(b"\n\n", b"\nid: 7\nretry: 3000\n: note\n\n: ping\n\n")


def no_last_blank(body: bytes) -> bytes:
    return body.rstrip(b"\n") + b"\n"


SHAPES = {"crlf": crlf, "cr": lone_cr, "bom": bom, "nospace": no_space, "chatter": chatter,
          "nolastblank": no_last_blank}  # fmt: skip


@pytest.mark.parametrize("split", [False, True], ids=["whole", "bytes"])
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_every_legal_sse_writing_gives_the_whole_text(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str, shape: str, split: bool
) -> None:
    email, key = box.new_user("10")
    """The first chat chunk carries text as well as the role (as many servers send it): with
    a byte order mark before it, that event was dropped, and its text with it."""
    writes = anthropic_stream(PIECES)
    if kind == "ho":
        first = chat_chunk({"role": "assistant", "content": PIECES[0]})
        writes = [first, *chat_stream(PIECES[1:])[1:]]
    body = SHAPES[shape](b"".join(writes))
    out: list[bytes | float] = [body]
    if split:  # a write a byte, the fake's loop let in after each (no timed pause: a hundred
        # of 0.5 ms took the start's 400 bytes past the 1 s the content has to begin on a
        # loaded machine)
        out = [x for i in range(len(body)) for x in (body[i : i + 1], 0.0)]
    hostile.push(Act(200, out, SSE))
    answer = box.post(key, route, kind, stream=True)
    assert answer.status_code == 200, answer.text
    assert got_text(route, answer, True) == "".join(PIECES), answer.text
    row = box.last_row(email)
    assert row["status"] == "ok" and 0 < row["cost_nanos"] <= row["hold_nanos"], row
    assert box.open_holds() == 0


@pytest.mark.parametrize("done", [b"data: [DONE] \n\n", b"data:  [DONE]\n\n", b"data: [DONE]\t"])
@pytest.mark.parametrize("route", ROUTES)
def test_a_done_with_white_space_around_it_ends_the_stream_cleanly(
    box: HostileBox, hostile: HostileUpstream, route: str, done: bytes
) -> None:
    """`[DONE]` with a space after it (or two after `data:`) ends a complete stream, as the
    OpenAI SDKs take it: it was a malformed event, so the client got the whole answer and then
    an error, and the call was free though the upstream charged for it."""
    email, key = box.new_user("10")
    hostile.push(Act(200, [*chat_stream(PIECES)[:-1], done], SSE))
    answer = box.post(key, route, "ho", stream=True)
    assert got_text(route, answer, True) == "".join(PIECES), answer.text
    assert "malformed" not in answer.text, answer.text
    row = box.last_row(email)
    assert row["status"] == "ok" and 0 < row["cost_nanos"] <= row["hold_nanos"], row


def at_the_limit(kind: str) -> bytes:
    """An event of exactly EVENT_LIMIT bytes (its blank line not counted) of the kind's
    dialect, with its two line ends: a text piece `!` and a field of padding (output that
    long would reach the output cap)."""

    def event(pad: str) -> bytes:
        if kind == "ho":
            return sse({**json.loads(chat_chunk({"content": "!"})[6:]), "pad": pad})
        return anthropic_event({"type": "content_block_delta", "index": 0, "pad": pad,
                                "delta": {"type": "text_delta", "text": "!"}})  # fmt: skip

    short = len(event("").removesuffix(b"\n\n"))
    return event("x" * (EVENT_LIMIT - short))


@pytest.mark.parametrize("ends", ["lf", "crlf"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_an_event_of_exactly_the_limit_split_inside_its_blank_line_is_taken(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str, ends: str
) -> None:
    """An event of exactly gateway.max_sse_event_bytes is within the limit however the reads
    cut it: cut after the first line end of the blank line that closes it, it was taken for
    one past the limit, so the client's answer ended in an error and the call went unbilled."""
    email, key = box.new_user("10")
    big = at_the_limit(kind)
    assert len(big) == EVENT_LIMIT + 2
    writes = stream_of(kind)
    shape = crlf if ends == "crlf" else (lambda body: body)
    head, cut = shape(b"".join(writes[:3]) + big[:-1]), shape(b"\n")
    if ends == "crlf":
        head, cut = head + b"\r", b"\n" + cut  # the CRLF of the blank line cut in two
    hostile.push(Act(200, [head, 0.3, cut + shape(b"".join(writes[3:]))], SSE))
    answer = box.post(key, route, kind, stream=True)
    assert answer.status_code == 200, answer.text
    assert "max_sse_event_bytes" not in answer.text, answer.text
    assert got_text(route, answer, True).count("!") == 1, answer.text
    row = box.last_row(email)
    assert row["status"] == "ok" and 0 < row["cost_nanos"] <= row["hold_nanos"], row
    assert box.open_holds() == 0


# What some servers send before their first event while the prompt is read (some vLLM and
# llama.cpp builds: an empty `data:`, or `data: ` and white space; OpenRouter: its comment)
BLANKS = {
    "empty": b"data:\n\n",
    "space": b"data: \n\n",
    "white": b"data:  \t \r\n\r\n",
    "mixed": b": keep-alive\n\ndata: \n\n: OPENROUTER PROCESSING\n\ndata:\n\n",
}


@pytest.mark.parametrize("late", [False, True], ids=["held", "past-hold"])
@pytest.mark.parametrize("blank", list(BLANKS))
@pytest.mark.parametrize("route", ROUTES)
def test_blank_data_before_the_first_event_is_no_event(
    box: HostileBox, hostile: HostileUpstream, route: str, blank: str, late: bool
) -> None:
    """An empty data field dispatches nothing worth relaying (nothing to parse): it is passed
    over as comments are, while the box waits for the first event, and after its hold (0.3 s)
    too when the stream started on them. It was a 502 "malformed stream event" (past the hold:
    the stream's error event), the answer that followed lost."""
    email, key = box.new_user("10")
    hostile.push(Act(200, [BLANKS[blank], 0.5 * late, *chat_stream(PIECES)], SSE))
    answer = box.post(key, route, "ho", stream=True)
    assert answer.status_code == 200, answer.text
    assert got_text(route, answer, True) == "".join(PIECES), answer.text
    assert "malformed" not in answer.text, answer.text
    row = box.last_row(email)
    assert row["status"] == "ok" and 0 < row["cost_nanos"] <= row["hold_nanos"], row


def test_blank_data_before_a_native_responses_stream_is_no_event_either(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    email, key = box.new_user("10")
    hostile.push(Act(200, [BLANKS["mixed"], *responses_stream(PIECES)], SSE))
    answer = box.post(key, "responses", "hr", stream=True)
    assert answer.status_code == 200, answer.text
    assert got_text("responses", answer, True) == "".join(PIECES), answer.text
    row = box.last_row(email)
    assert row["status"] == "ok" and 0 < row["cost_nanos"] <= row["hold_nanos"], row


@pytest.mark.parametrize("route", ROUTES)
def test_an_error_after_blank_data_is_still_the_first_event(
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    """Blank data is no first event: an error event after it is answered unstreamed (the
    owner's rule for a stream's first error event), a rate limit as a 429 after every key."""
    email, key = box.new_user("10")
    hostile.default = Act(200, [BLANKS["mixed"], FIRST_EVENTS["rate_limit"][0]], SSE)
    answer = box.post(key, route, "ho", stream=True)
    assert answer.status_code == 429, answer.text
    assert "free-models-per-min" in answer.text, answer.text
    assert box.last_row(email)["error_code"] == "rate_limited"


@pytest.mark.parametrize("lines", ["blank-first", "comment-first", "comments"])
@pytest.mark.parametrize("route", ROUTES)
def test_a_stream_of_only_blank_data_is_judged_as_an_empty_stream(
    box: HostileBox, hostile: HostileUpstream, route: str, lines: str
) -> None:
    """Blank data and comments, then the end: the same answer as a stream that sent nothing."""
    email, key = box.new_user("10")
    only = {"blank-first": b"".join(BLANKS.values()), "comment-first": BLANKS["mixed"],
            "comments": b": keep-alive\n\n: OPENROUTER PROCESSING\n\n"}[lines]  # fmt: skip
    hostile.push(Act(200, [], SSE), Act(200, [only], SSE))
    empty = box.post(key, route, "ho", stream=True)
    blank = box.post(key, route, "ho", stream=True)
    assert empty.status_code == blank.status_code, (empty.text, blank.text)
    assert empty.status_code >= 500, empty.text
    assert empty.json() == blank.json()
    rows = box.usage_rows(email)
    assert [(r["status"], r["cost_nanos"], r["error_code"]) for r in rows[-2:]] == [
        ("error", 0, rows[-1]["error_code"])] * 2  # fmt: skip


@pytest.mark.parametrize("route", ROUTES)
def test_blank_data_before_a_stream_sent_for_a_whole_answer_is_no_event_either(
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    """A server that streams though it was asked for a whole answer: its stream is read into
    the answer its chunks add up to, blank data before them passed over (a 502 "not JSON")."""
    email, key = box.new_user("10")
    hostile.push(Act(200, [BLANKS["mixed"], *chat_stream(PIECES)], SSE))
    answer = box.post(key, route, "ho", stream=False)
    assert answer.status_code == 200, answer.text
    assert got_text(route, answer, False) == "".join(PIECES), answer.text
    row = box.last_row(email)
    assert row["status"] == "ok" and 0 < row["cost_nanos"] <= row["hold_nanos"], row
