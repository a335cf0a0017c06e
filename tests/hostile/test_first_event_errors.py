"""Streams the upstream accepts (200) whose first event is an error, on every inference route,
to both kinds of provider (the box: tests/hostile/conftest.py): answered as the same error in
a non-streamed answer would be, since the client got nothing yet (a rate limit and an overload
go to the next key, then 429 and 503; a refused request is a 400 with the upstream's words,
tried once; any other error goes to the next key, then 502), and never charged. They all
ended as a 502: an OpenAI-compatible stream's at once, an Anthropic stream's after every key
was tried, a refusal of the request included."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.fakes.hostile_upstream import (
    SSE,
    Act,
    HostileUpstream,
    anthropic_event,
    responses_stream,
    sse,
)
from tests.hostile.conftest import (
    KEYS,
    KINDS,
    RETRIES,
    ROUTES,
    HostileBox,
    assert_free,
    events,
    stream_of,
)

pytestmark = pytest.mark.timeout(60)


def _anthropic_error(kind: str, message: str) -> bytes:
    return anthropic_event({"type": "error", "error": {"type": kind, "message": message}})


# Each case: the first event from an `openai` upstream (OpenRouter's, LiteLLM's, vLLM's and
# OpenRouter's mid-stream shapes) and from an `anthropic` one, the words it says, the status
# the client gets once no key is left, its usage row's error code and how often it is tried.
FIRST_EVENTS: dict[str, tuple[bytes, bytes, str, int, str, int]] = {
    "rate_limit": (
        sse({"error": {"code": 429, "message": "Rate limit exceeded: free-models-per-min"}}),
        _anthropic_error("rate_limit_error", "Rate limit exceeded: free-models-per-min"),
        "free-models-per-min", 429, "rate_limited", KEYS,  # each key once: it would answer the same
    ),
    "overloaded": (
        sse({"error": {"message": "The model is overloaded now", "type": "overloaded_error",
                       "code": "529"}}),
        _anthropic_error("overloaded_error", "The model is overloaded now"),
        "overloaded now", 503, "upstream_overloaded", 1 + RETRIES,
    ),
    "invalid_request": (
        sse({"error": {"object": "error", "message": "temperature must be at most 2",
                       "type": "BadRequestError", "param": None, "code": 400}}),
        _anthropic_error("invalid_request_error", "temperature must be at most 2"),
        "temperature must be at most 2", 400, "upstream_400", 1,
    ),
    "other": (
        sse({"id": "gen-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "error": {"code": "server_error", "message": "Provider disconnected unexpectedly"},
             "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}),
        _anthropic_error("api_error", "Provider disconnected unexpectedly"),
        "Provider disconnected unexpectedly", 502, "upstream_error", 1 + RETRIES,
    ),
}  # fmt: skip


def _failing(kind: str, case: str) -> Act:
    """A 200 stream whose first event is the case's error."""
    openai_event, anthropic_one = FIRST_EVENTS[case][:2]
    return Act(200, [openai_event if kind == "ho" else anthropic_one], SSE)


def _error_of(route: str, body: dict[str, Any]) -> dict[str, Any]:
    """The error object of an error answer, in its route's dialect."""
    if route == "messages":
        assert body["type"] == "error", body
    return body["error"]


@pytest.mark.parametrize("case", list(FIRST_EVENTS))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_a_first_error_event_on_every_key_is_answered_as_that_error_unstreamed(
    patient_box: HostileBox, hostile: HostileUpstream, route: str, kind: str, case: str
) -> None:
    box = patient_box  # the first event waited for 5 s: judged whole, loaded or not
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    words, status, code, tries = FIRST_EVENTS[case][2:]
    hostile.default = _failing(kind, case)
    answer = box.post(key, route, kind, stream=True)
    assert answer.status_code == status, answer.text
    error = _error_of(route, answer.json())
    assert words in error["message"], answer.text
    if status == 429:
        assert error["type"] == "rate_limit_error" and int(answer.headers["retry-after"]) >= 1
    if status == 400:
        assert error["type"] == "invalid_request_error", answer.text
    assert len(hostile.seen) == tries
    assert_free(box, email, start, code)


@pytest.mark.parametrize("case", ["rate_limit", "overloaded", "other"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_a_first_error_event_that_another_key_may_not_get_goes_to_the_next_key(
    patient_box: HostileBox, hostile: HostileUpstream, route: str, kind: str, case: str
) -> None:
    box = patient_box  # the first event waited for 5 s: judged whole, loaded or not
    email, key = box.new_user("10")
    hostile.push(_failing(kind, case), Act(200, stream_of(kind), SSE))
    answer = box.post(key, route, kind, stream=True)
    assert answer.status_code == 200, answer.text
    assert "Hel" in answer.text and FIRST_EVENTS[case][2] not in answer.text, answer.text
    first, second = (seen.key for seen in hostile.seen)
    assert first != second
    row = box.last_row(email)
    assert row["status"] == "ok" and row["cost_nanos"] > 0, row
    assert box.balance_nanos(email)[1] == 0


def test_a_refusal_in_the_first_event_is_the_same_answer_as_in_an_error_status(
    patient_box: HostileBox, hostile: HostileUpstream
) -> None:
    """The streamed refusal reads as the unstreamed one: the same status, type and message."""
    box = patient_box  # the first event waited for 5 s: judged whole, loaded or not
    _, key = box.new_user("10")
    refusal = {"error": {"message": "max_tokens is too large", "type": "invalid_request_error",
                         "param": "max_tokens", "code": "invalid_value"}}  # fmt: skip
    hostile.push(Act(400, [json.dumps(refusal).encode()]), Act(200, [sse(refusal)], SSE))
    unstreamed = box.post(key, "chat", "ho", stream=False)
    streamed = box.post(key, "chat", "ho", stream=True)
    assert unstreamed.status_code == streamed.status_code == 400
    assert streamed.json() == unstreamed.json()


@pytest.mark.parametrize("route", ROUTES)
def test_a_first_event_that_is_slow_to_come_leaves_the_client_no_longer_without_a_byte(
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    """The first event is waited for the keep-alive interval (0.3 s here) at most; a keep-alive
    comment then goes out at once, not one interval later: the client was waiting all along."""
    _, key = box.new_user("10")
    hostile.push(Act(200, [b": OPENROUTER PROCESSING\n\n", 0.85, *stream_of("ho")], SSE))
    answer = box.post(key, route, "ho", stream=True)
    assert answer.status_code == 200, answer.text
    before_content = answer.text.split("data:", 1)[0]
    assert before_content.count(": keep-alive") >= 2, answer.text


@pytest.mark.parametrize("kind", KINDS)
def test_a_retry_after_a_late_first_error_event_holds_the_client_no_longer_in_all(
    box: HostileBox, hostile: HostileUpstream, kind: str
) -> None:
    """The keep-alive interval (0.3 s) is the hold of the whole call, counted from the request,
    not of each attempt: a key whose error event came late in it and a next key slow to start
    left the client without a byte for nearly two intervals (each attempt held it anew)."""
    _, key = box.new_user("10")
    openai_event, anthropic_one = FIRST_EVENTS["rate_limit"][:2]
    error_event = openai_event if kind == "ho" else anthropic_one
    late_error: list[bytes | float] = [b": OPENROUTER PROCESSING\n\n", 0.2, error_event]
    hostile.push(Act(200, late_error, SSE), Act(200, [0.6, *stream_of(kind)], SSE))
    body = {"model": f"{kind}/m", "stream": True, "max_tokens": 100,
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    path = "/v1/chat/completions"
    with box.http(key) as client, client.stream("POST", path, json=body) as answer:
        pieces = answer.iter_raw()
        first = next(pieces)
        # From the first attempt's arrival, after the request's own: a loaded machine's slow
        # admission is not counted (0.3 s at most; each attempt held anew: 0.2 + 0.3 s at least)
        waited = time.monotonic() - hostile.seen[0].at
        rest = b"".join(pieces)
    assert answer.status_code == 200, first
    assert first.startswith(b": keep-alive") and waited < 0.45, (waited, first)
    assert b"Hel" in rest and len(hostile.seen) == 2, rest


@pytest.mark.parametrize("route", ROUTES)
def test_an_unsupported_country_in_the_first_event_is_the_same_503_as_in_an_error_status(
    patient_box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    """OpenAI's unsupported_country_region_territory as a stream's first event is what it is as
    a 403: the provider unavailable from where the box runs (503), not tried on another key
    (every key is sent from the same place), free; it was a 502 after every key."""
    box = patient_box  # the first event waited for 5 s: judged whole, loaded or not
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    country = {"error": {"code": "unsupported_country_region_territory", "param": None,
                         "message": "Country, region, or territory not supported",
                         "type": "request_forbidden"}}  # fmt: skip
    hostile.default = Act(200, [sse(country)], SSE)
    answer = box.post(key, route, "ho", stream=True)
    assert answer.status_code == 503, answer.text
    assert "country, region or territory" in _error_of(route, answer.json())["message"]
    assert len(hostile.seen) == 1
    assert_free(box, email, start, "provider_unavailable")


# A native Responses stream's (`hr`: an `openai` provider serving /v1/responses itself) first
# event: OpenAI's `response.failed` (the error in `response.error`) or its `error` event (code
# and message at the top), with the code, the words, the status the client gets once no key is
# left, the usage row's code and how often it is tried
NATIVE_FIRST_EVENTS: dict[str, tuple[str, str, int, str, int]] = {
    "rate_limit": ("rate_limit_exceeded", "Rate limit reached for m on tokens per min (TPM)",
                   429, "rate_limited", KEYS),
    "server_error": ("server_error", "An error occurred while processing your request",
                     502, "upstream_error", 1 + RETRIES),
    "overloaded": ("server_is_overloaded", "The server is overloaded, try again later",
                   503, "upstream_overloaded", 1 + RETRIES),
    "invalid_prompt": ("invalid_prompt", "Invalid prompt: flagged as violating our policy",
                       400, "upstream_400", 1),
}  # fmt: skip


def _native_first_event(shape: str, case: str) -> bytes:
    """`response.failed` or `error` as a native Responses stream's very first event."""
    code, message = NATIVE_FIRST_EVENTS[case][:2]
    if shape == "error":
        error = {"type": "error", "code": code, "message": message, "param": None}
        return sse(error | {"sequence_number": 0}, event="error")
    response = {"id": "resp_1", "object": "response", "created_at": 1, "status": "failed",
                "model": "m", "output": [], "usage": None,
                "error": {"code": code, "message": message}}  # fmt: skip
    return sse({"type": "response.failed", "sequence_number": 0, "response": response},
               event="response.failed")  # fmt: skip


@pytest.mark.parametrize("case", list(NATIVE_FIRST_EVENTS))
@pytest.mark.parametrize("shape", ["response.failed", "error"])
def test_a_native_responses_stream_failing_at_its_first_event_is_that_error_unstreamed(
    patient_box: HostileBox, hostile: HostileUpstream, shape: str, case: str
) -> None:
    """Under the same rule as the other streams: the client has nothing yet, so it gets the
    error the event carries with the status its code stands for (a rate limit and a server
    error go to the next key first), free; it was a 502 "the upstream failed" at once."""
    box = patient_box  # the first event waited for 5 s: judged whole, loaded or not
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    code, words, status, row_code, tries = NATIVE_FIRST_EVENTS[case]
    hostile.default = Act(200, [_native_first_event(shape, case)], SSE)
    answer = box.post(key, "responses", "hr", stream=True)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert words in error["message"], answer.text
    if status == 429:
        assert error["type"] == "rate_limit_error" and int(answer.headers["retry-after"]) >= 1
    if status == 400:
        assert (error["type"], error["code"]) == ("invalid_request_error", code), answer.text
    assert len(hostile.seen) == tries and len({seen.key for seen in hostile.seen}) == min(tries, 2)
    assert_free(box, email, start, row_code)


@pytest.mark.parametrize("shape", ["response.failed", "error"])
def test_a_native_responses_refusal_in_the_first_event_reads_as_the_unstreamed_one(
    patient_box: HostileBox, hostile: HostileUpstream, shape: str
) -> None:
    box = patient_box  # the first event waited for 5 s: judged whole, loaded or not
    _, key = box.new_user("10")
    code, words = NATIVE_FIRST_EVENTS["invalid_prompt"][:2]
    refusal = {"error": {"message": words, "type": "invalid_request_error", "param": None,
                         "code": code}}  # fmt: skip
    streamed_error = Act(200, [_native_first_event(shape, "invalid_prompt")], SSE)
    hostile.push(Act(400, [json.dumps(refusal).encode()]), streamed_error)
    unstreamed = box.post(key, "responses", "hr", stream=False)
    streamed = box.post(key, "responses", "hr", stream=True)
    assert unstreamed.status_code == streamed.status_code == 400
    assert streamed.json() == unstreamed.json()


def test_a_native_responses_rate_limit_in_the_first_event_goes_to_the_next_key(
    patient_box: HostileBox, hostile: HostileUpstream
) -> None:
    box = patient_box  # the first event waited for 5 s: judged whole, loaded or not
    email, key = box.new_user("10")
    hostile.push(Act(200, [_native_first_event("response.failed", "rate_limit")], SSE),
                 Act(200, responses_stream(), SSE))  # fmt: skip
    answer = box.post(key, "responses", "hr", stream=True)
    assert answer.status_code == 200, answer.text
    assert "response.completed" in answer.text and "Rate limit" not in answer.text, answer.text
    first, second = (seen.key for seen in hostile.seen)
    assert first != second
    row = box.last_row(email)
    assert row["status"] == "ok" and row["cost_nanos"] > 0, row


def test_a_native_responses_failure_after_response_created_reaches_the_client_as_the_event(
    patient_box: HostileBox, hostile: HostileUpstream
) -> None:
    """`response.created` then `response.failed` (OpenAI's way: created comes first) is a
    failure mid-stream: the client has the stream, so it gets the event, with the upstream's
    code and words; a failed stream costs nothing; not tried again."""
    box = patient_box  # the first event waited for 5 s: judged whole, loaded or not
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    created = responses_stream()[0]
    hostile.default = Act(200, [created, _native_first_event("response.failed", "rate_limit")],
                          SSE)  # fmt: skip
    answer = box.post(key, "responses", "hr", stream=True)
    assert answer.status_code == 200, answer.text
    kinds = [json.loads(data)["type"] for data in events(answer.text)]
    assert kinds == ["response.created", "response.failed"], answer.text
    failed = json.loads(events(answer.text)[-1])["response"]
    assert failed["status"] == "failed" and failed["model"] == "hr/m", failed
    assert failed["error"]["code"] == "rate_limit_exceeded", failed
    assert NATIVE_FIRST_EVENTS["rate_limit"][1] in failed["error"]["message"], failed
    assert len(hostile.seen) == 1
    assert box.balance_nanos(email) == (start, 0)
    row = box.last_row(email)
    assert (row["status"], row["cost_nanos"]) == ("error", 0), row


def _limited(wait: int, in_event: bool) -> Act:
    """A rate limit of `wait` seconds: in a stream's first event (Gemini's RetryInfo), or a 429."""
    if in_event:
        delay = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{wait}s"}
        gemini = {"code": 429, "message": "Resource has been exhausted", "details": [delay]}
        return Act(200, [sse({"error": gemini})], SSE)
    limited = json.dumps({"error": {"message": "slow down", "code": "rate_limit_exceeded"}})
    return Act(429, [limited.encode()], headers={"retry-after": str(wait)})


@pytest.mark.parametrize("event_first", [True, False])
@pytest.mark.parametrize("route", ROUTES)
def test_a_rate_limit_in_the_first_event_counts_toward_the_shortest_wait_of_the_keys(
    patient_box: HostileBox, hostile: HostileUpstream, route: str, event_first: bool
) -> None:
    """Every key limited, one in its stream's first event, the other with a 429, the first one
    tried free again in 5 s and the other in 60 s: the client should come back when the first
    key is free, as when both keys answered 429 (gateway/retry_after.py sooner); it was told
    the last one's 60 s."""
    box = patient_box
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    later = _limited(60, not event_first)
    hostile.push(_limited(5, event_first), later, later)
    answer = box.post(key, route, "ho", stream=True)
    assert answer.status_code == 429, answer.text
    assert len({seen.key for seen in hostile.seen}) == 2
    assert answer.headers["retry-after"] == "5", answer.headers
    assert_free(box, email, start, "rate_limited")
