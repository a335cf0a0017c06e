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

from tests.fakes.hostile_upstream import SSE, Act, HostileUpstream, anthropic_event, sse
from tests.hostile.conftest import KINDS, RETRIES, ROUTES, HostileBox, assert_free, stream_of

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
        "free-models-per-min", 429, "rate_limited", 1 + RETRIES,
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
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str, case: str
) -> None:
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
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str, case: str
) -> None:
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
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """The streamed refusal reads as the unstreamed one: the same status, type and message."""
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
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    """OpenAI's unsupported_country_region_territory as a stream's first event is what it is as
    a 403: the provider unavailable from where the box runs (503), not tried on another key
    (every key is sent from the same place), free; it was a 502 after every key."""
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
