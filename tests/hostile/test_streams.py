"""Upstream streams that misbehave once started, on every inference route, to both kinds of
provider (the box: tests/hostile/conftest.py): a malformed event, a silence past the read
timeout, an oversized event, an Anthropic stream that never starts its content; and a client
that leaves a stream (read on while it produces, hung up on once it only talks)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.fakes.hostile_upstream import (
    CHAT_USAGE,
    SSE,
    Act,
    HostileUpstream,
    anthropic_event,
    anthropic_stream,
    chat_chunk,
    chat_stream,
    sse,
)
from tests.hostile.conftest import (
    BODY_LIMIT,
    KINDS,
    PATHS,
    RETRIES,
    ROUTES,
    HostileBox,
    assert_ends_with_error,
    assert_free,
    events,
    leave_after_first_bytes,
    paced,
    settled_row,
    stream_of,
)

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_a_malformed_stream_event_ends_the_stream_with_an_error_and_costs_nothing(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str
) -> None:
    """A data line that is not JSON in the middle of a stream is a broken upstream, whatever
    follows it: the client's stream ends with an error event of its dialect and the call costs
    nothing. From an Anthropic upstream the line was dropped without a word and the stream
    went on as if complete: a text with a hole in it, status ok, charged."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    whole = stream_of(kind)
    hostile.default = Act(200, [*whole[:3], b"data: {not json\n\n", *whole[3:]], SSE)
    answer = box.post(key, route, kind, stream=True)
    assert answer.status_code == 200
    assert_ends_with_error(route, answer.text, "malformed stream event")
    assert_free(box, email, start, "upstream_error")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_an_upstream_silent_mid_stream_ends_it_with_a_timeout_said_once(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str
) -> None:
    """Silent past read_timeout_sec (1 s) after some content: an error event that says so (once:
    it read "the upstream did not answer in time: the upstream did not answer in time"), the
    call free, its hold released, the upstream's connection closed."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    hostile.default = Act(200, stream_of(kind, end=False), SSE, hang=True)
    began = time.monotonic()
    answer = box.post(key, route, kind, stream=True)
    assert time.monotonic() - began < 5
    assert_ends_with_error(route, answer.text, "did not answer in time")
    assert answer.text.count("did not answer in time") == 1, answer.text
    assert_free(box, email, start, "upstream_timeout")
    assert hostile.client_gone.wait(5)


@pytest.mark.parametrize("route", ROUTES)
def test_an_oversized_event_right_after_content_starts_ends_the_stream_not_the_call(
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    """An Anthropic stream whose content starts and whose next event is past
    max_sse_event_bytes, all in one read longer than max_upstream_body_bytes: the stream was
    started, so the client gets its start and an error event that names the event limit (the
    wait for content took the read's length for a body before any answer: a 502). The client
    got the start of the answer, which the provider made: charged what was counted of it."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    whole = anthropic_stream()
    huge = anthropic_event({"type": "content_block_delta", "index": 0,
                            "delta": {"type": "text_delta", "text": "y" * BODY_LIMIT}})  # fmt: skip
    hostile.default = Act(200, [b"".join([*whole[:3], huge, *whole[3:]])], SSE)
    answer = box.post(key, route, "ha", stream=True)
    assert answer.status_code == 200, answer.text
    assert_ends_with_error(route, answer.text, "max_sse_event_bytes")
    row = box.last_row(email)
    assert (row["status"], row["error_code"], row["estimated"]) == (
        "error", "upstream_too_large", 1,
    ), row  # fmt: skip
    assert row["input_tokens"] == 7 and row["output_tokens"] >= 1, row
    assert 0 < row["cost_nanos"] <= row["hold_nanos"], row
    assert box.balance_nanos(email) == (start - row["cost_nanos"], 0)


def pings_forever() -> Act:
    """An Anthropic stream that opens (message_start), then pings every 0.2 s for 20 s."""
    ping = anthropic_event({"type": "ping"})
    return Act(200, [anthropic_stream(end=False)[0], *paced([ping] * 100, 0.2)], SSE)


@pytest.mark.parametrize("route", ROUTES)
def test_an_anthropic_stream_that_pings_and_never_starts_ends_with_an_error_in_time(
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    """An Anthropic upstream that opens its stream and then only pings, never starting content:
    the box holds its answer back for the keep-alive interval (0.3 s; an error before content
    is still retried on another key), then starts the stream so that the client is not left
    without a byte (gateway/stream_start.py), but not for ever: read_timeout_sec (1 s) without
    content is an upstream gone silent, the stream's error event, at no cost, the upstream
    hung up on. (It was a 504 after the box waited as long as the pings came, the client
    getting nothing.)"""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    hostile.default = pings_forever()
    began = time.monotonic()
    answer = box.post(key, route, "ha", stream=True)
    assert time.monotonic() - began < 5
    assert answer.status_code == 200, answer.text
    assert_ends_with_error(route, answer.text, "did not start its answer in time")
    assert hostile.client_gone.wait(5)
    assert_free(box, email, start, "upstream_timeout")


def test_an_anthropic_stream_that_never_starts_is_not_read_on_for_ever_once_its_client_left(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """The same upstream, the client gone before the box answered (within the keep-alive
    interval the answer is held back): the box hangs up on it read_timeout_sec after it
    opened, the call free, no hold left."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    hostile.default = pings_forever()
    body: dict[str, Any] = {"model": "ha/m", "stream": True, "max_tokens": 100,
                            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    with box.http(key) as client, pytest.raises(httpx.ReadTimeout):
        client.post(PATHS["messages"], json=body, timeout=httpx.Timeout(10, read=0.15))
    assert hostile.client_gone.wait(8)
    settled_row(box, email)
    assert_free(box, email, start, "upstream_timeout")
    assert box.open_holds() == 0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ("chat", "messages"))
def test_a_left_stream_still_producing_past_the_read_timeout_is_charged_the_providers_count(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str
) -> None:
    """gateway.read_timeout_sec is the longest silence between bytes, not a limit on a whole
    answer: a stream its client left that goes on producing, each piece well within the
    timeout (0.2 s of 1 s) but longer than it in all, is read to its end and charged what the
    provider reports. It was cut read_timeout_sec after the client left and charged an
    estimate (an OpenAI upstream's input guessed: 29 tokens for its 7)."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    pieces = tuple(f" w{n}" for n in range(8))
    whole = chat_stream(pieces) if kind == "ho" else anthropic_stream(pieces)
    hostile.default = Act(200, paced(whole, 0.2), SSE)
    leave_after_first_bytes(box, key, route, kind)
    row = settled_row(box, email)
    assert (row["status"], row["estimated"]) == ("abandoned", 0), row
    assert (row["input_tokens"], row["output_tokens"]) == (7, 3)
    assert box.balance_nanos(email) == (start - row["cost_nanos"], 0)
    assert box.open_holds() == 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_left_stream_that_only_keeps_talking_is_cut_after_the_read_timeout(
    box: HostileBox, hostile: HostileUpstream, kind: str
) -> None:
    """An upstream that, its client gone, sends nothing but comments or pings (bytes, never
    output) is not read on forever: read_timeout_sec after the last output the box hangs up,
    charges what it saw and frees the hold."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    chatter = b": still here\n\n" if kind == "ho" else anthropic_event({"type": "ping"})
    hostile.default = Act(200, [*stream_of(kind, end=False), *paced([chatter] * 100, 0.2)], SSE)
    leave_after_first_bytes(box, key, "chat", kind)
    assert hostile.client_gone.wait(8)
    row = settled_row(box, email)
    assert (row["status"], row["estimated"]) == ("abandoned", 1), row
    assert 0 < row["cost_nanos"] <= row["hold_nanos"]
    assert box.balance_nanos(email) == (start - row["cost_nanos"], 0)
    assert box.open_holds() == 0


def error_event(kind: str) -> bytes:
    """The provider's own error event inside a stream: Anthropic's overloaded_error, or the
    `{"error": ...}` chunk OpenAI-compatible servers send."""
    if kind == "ha":
        error = {"type": "overloaded_error", "message": "Overloaded"}
        return anthropic_event({"type": "error", "error": error})
    return sse({"error": {"message": "Overloaded", "type": "server_error"}})


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("how", ["dropped", "error-event"])
def test_a_stream_broken_after_content_ends_in_the_routes_dialect_for_free(
    box: HostileBox, hostile: HostileUpstream, how: str, route: str, kind: str
) -> None:
    """After some content the upstream drops the connection, or sends its own error event
    (Anthropic's overloaded_error): nothing is retried (the client has output), its stream
    ends with one error event of its dialect, and the call costs nothing."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    begun = stream_of(kind, end=False)
    if how == "dropped":
        hostile.default = Act(200, begun, SSE, drop=True)
    else:
        hostile.default = Act(200, [*begun, error_event(kind)], SSE)
    answer = box.post(key, route, kind, stream=True)
    assert answer.status_code == 200
    assert len(hostile.seen) == 1
    words = "connection broke" if how == "dropped" else "Overloaded"
    assert_ends_with_error(route, answer.text, words)
    code = "overloaded_error" if (how, kind) == ("error-event", "ha") else "upstream_error"
    assert_free(box, email, start, code)


@pytest.mark.parametrize("how", ["reset", "silent"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_a_reset_or_a_silence_after_the_final_usage_ends_the_stream_as_a_clean_close_does(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str, how: str
) -> None:
    """The whole answer and the provider's final count arrived, then the connection was reset
    instead of closed, or went silent past the read timeout (no `[DONE]`, no message_stop):
    the same bytes closed cleanly make a complete stream, charged the provider's count; reset
    or silent, they made an error event after the whole answer and a free call."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    silent = how == "silent"
    hostile.default = Act(200, stream_of(kind)[:-1], SSE, drop=not silent, hang=silent)
    answer = box.post(key, route, kind, stream=True)
    assert answer.status_code == 200
    last = json.loads(events(answer.text)[-1]) if route != "chat" else events(answer.text)[-1]
    ends = {"chat": "[DONE]", "messages": "message_stop", "responses": "response.completed"}
    assert (last if route == "chat" else last["type"]) == ends[route], answer.text
    row = box.last_row(email)
    assert (row["status"], row["estimated"]) == ("ok", 0), row
    assert (row["input_tokens"], row["output_tokens"]) == (7, 3)
    assert box.balance_nanos(email) == (start - row["cost_nanos"], 0)


@pytest.mark.parametrize("how", ["reset", "silent", "closed"])
@pytest.mark.parametrize("route", ROUTES)
def test_a_usage_chunk_with_no_finish_before_it_is_the_final_count_however_the_stream_ends(
    box: HostileBox, hostile: HostileUpstream, route: str, how: str
) -> None:
    """A server that sends no finish_reason but the usage chunk (no choices) at the end: that
    count is the final one (a closed stream of it is whole), so a reset or a silence after it
    ends the stream whole too; the running-count guard took it for a cut mid-answer."""
    email, key = box.new_user("10")
    silent = how == "silent"
    body: list[bytes | float] = [*chat_stream(end=False), chat_chunk(usage=CHAT_USAGE)]
    hostile.default = Act(200, body, SSE, drop=how == "reset", hang=silent)
    answer = box.post(key, route, "ho", stream=True)
    assert answer.status_code == 200
    last = events(answer.text)[-1]
    ends = {"chat": "[DONE]", "messages": "message_stop", "responses": "response.completed"}
    assert ends[route] in last, answer.text
    row = box.last_row(email)
    assert (row["status"], row["input_tokens"], row["output_tokens"]) == ("ok", 7, 3), row


def running_usage_stream() -> list[bytes | float]:
    """An openai stream whose content chunks each carry the running usage (vLLM with the
    client's `stream_options.continuous_usage_stats`), cut before any finish_reason."""
    chunks = [json.loads(line.removeprefix(b"data: ")) for line in chat_stream(end=False)]
    for n, chunk in enumerate(chunks):
        chunk["usage"] = {"prompt_tokens": 7, "completion_tokens": n, "total_tokens": 7 + n}
    return [sse(chunk) for chunk in chunks]


@pytest.mark.parametrize("how", ["reset", "silent", "closed"])
@pytest.mark.parametrize("route", ROUTES)
def test_a_reset_or_a_silence_mid_answer_is_a_failure_though_each_chunk_had_a_running_usage(
    box: HostileBox, hostile: HostileUpstream, route: str, how: str
) -> None:
    """Usage riding on every content chunk is a running count, not the final one: a stream
    reset or silent past the read timeout before any choice finished is cut mid-answer, an
    error event and a free call (it ended as a complete answer, [DONE] / message_stop /
    response.completed, and was charged). So is one closed cleanly there, as a stream with
    no usage closed before its finish_reason is."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    silent = how == "silent"
    drop = how == "reset"
    hostile.default = Act(200, running_usage_stream(), SSE, drop=drop, hang=silent)
    answer = box.post(key, route, "ho", stream=True)
    assert answer.status_code == 200
    last = events(answer.text)[-1]
    assert last != "[DONE]" and "message_stop" not in last, answer.text
    assert "response.completed" not in last, answer.text
    row = box.last_row(email)
    assert (row["status"], row["cost_nanos"]) == ("error", 0), row
    assert box.balance_nanos(email) == (start, 0)


def test_retries_before_and_after_an_anthropic_stream_opens_share_one_budget(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """A 529 before a stream opens and an overloaded error event before its content are both
    retries of gateway.max_retries: counted apart (each error event started the count of the
    next opening again), a call alternating between them was sent upstream 5 times where the
    configuration allows 1 + 2."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    overloaded = {"type": "overloaded_error", "message": "Overloaded"}
    refused = Act(529, [json.dumps({"type": "error", "error": overloaded}).encode()])
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
               "content": [], "stop_reason": None, "stop_sequence": None,
               "usage": {"input_tokens": 7, "output_tokens": 1}}  # fmt: skip
    failed = Act(200, [anthropic_event({"type": "message_start", "message": message}),
                       anthropic_event({"type": "error", "error": overloaded})], SSE)  # fmt: skip
    hostile.push(*[refused, failed] * 4)
    answer = box.post(key, "messages", "ha", stream=True)
    assert answer.status_code == 503, answer.text
    assert len(hostile.seen) == 1 + RETRIES
    assert_free(box, email, start, "upstream_overloaded")


def after_the_end(kind: str) -> bytes:
    """What comes past a stream's end (`[DONE]`, message_stop): more text and a smaller usage
    (1 output token)."""
    if kind == "ho":
        usage = {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}
        more = [*chat_stream(("AFTER",), end=False)[1:],
                sse({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                     "choices": [], "usage": usage})]  # fmt: skip
    else:
        delta = {"stop_reason": "end_turn", "stop_sequence": None}
        more = [*anthropic_stream(("AFTER",), end=False)[2:],
                anthropic_event({"type": "message_delta", "usage": {"output_tokens": 1},
                                 "delta": delta})]  # fmt: skip
    return b"".join(more)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_nothing_after_a_streams_end_is_relayed_or_counted(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str
) -> None:
    """Events after `[DONE]` or message_stop that came in the same read as it were relayed
    (text after the answer's end) and counted (a later, smaller usage was the charge)."""
    email, key = box.new_user("10")
    hostile.push(Act(200, [b"".join(stream_of(kind)) + after_the_end(kind)], SSE))
    answer = box.post(key, route, kind, stream=True)
    assert answer.status_code == 200, answer.text
    assert "AFTER" not in answer.text, answer.text
    row = box.last_row(email)
    assert (row["status"], row["input_tokens"], row["output_tokens"]) == ("ok", 7, 3), row
    assert box.open_holds() == 0
    box.cli("doctor")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ("chat", "messages"))
def test_nothing_after_the_end_of_a_left_stream_is_counted(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str
) -> None:
    """So too once the client left: the stream read on is charged the count before its end
    (its last events and what follows them in one read)."""
    email, key = box.new_user("10")
    pieces = tuple(f" w{n}" for n in range(8))
    whole = chat_stream(pieces) if kind == "ho" else anthropic_stream(pieces)
    last = b"".join(whole[-3:]) + after_the_end(kind)
    hostile.push(Act(200, [*paced(whole[:-3], 0.2), last], SSE))
    leave_after_first_bytes(box, key, route, kind)
    row = settled_row(box, email)
    assert (row["status"], row["input_tokens"], row["output_tokens"]) == ("abandoned", 7, 3), row
    assert box.open_holds() == 0
    box.cli("doctor")
