"""Token counts no provider gives, in an upstream's usage: an `anthropic` upstream's negative
input count (or cache read count), an `openai` upstream's counts as JSON booleans; streamed and
not, on every route.
No call has an empty prompt, so a negative count is no count: the input is the box's estimate,
as for a count of 0, never a free prompt; and `true` is no count, as a string is not (so too
from a native Responses upstream, and in an answer to count_tokens)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.hostile_upstream import (
    SSE,
    Act,
    HostileUpstream,
    anthropic_body,
    anthropic_stream,
    chat_body,
    chat_chunk,
    chat_stream,
    responses_body,
)
from tests.hostile.conftest import ROUTES, HostileBox

pytestmark = pytest.mark.timeout(60)


def with_input_count(count: int, stream: bool) -> Act:
    """An anthropic answer (3 output tokens) whose usage counts `count` input tokens."""
    if stream:
        writes = anthropic_stream()
        writes[0] = writes[0].replace(b'"input_tokens": 7', f'"input_tokens": {count}'.encode())
        return Act(200, writes, SSE)
    body = json.loads(anthropic_body())
    body["usage"]["input_tokens"] = count
    return Act(200, [json.dumps(body).encode()])


def settled(
    box: HostileBox, hostile: HostileUpstream, act: Act, route: str, stream: bool, kind: str = "ha"
) -> Any:
    email, key = box.new_user("10")
    hostile.push(act)
    answer = box.post(key, route, kind, stream=stream)
    assert answer.status_code == 200, answer.text
    row = box.last_row(email)
    assert box.balance_nanos(email) == (10 * 10**9 - row["cost_nanos"], 0)
    return row


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("route", ROUTES)
def test_a_negative_input_count_is_estimated_as_a_zero_one_is(
    box: HostileBox, hostile: HostileUpstream, route: str, stream: bool
) -> None:
    """`input_tokens: -5` was summed into the input (below 0, so priced as none and stored as
    0): the prompt went free, where a count of 0 is taken for none and estimated."""
    zero = settled(box, hostile, with_input_count(0, stream), route, stream)
    negative = settled(box, hostile, with_input_count(-5, stream), route, stream)
    assert zero["input_tokens"] > 0 and zero["estimated"] == 1, zero
    for name in ("status", "input_tokens", "output_tokens", "cost_nanos", "estimated"):
        assert negative[name] == zero[name], (name, negative, zero)
    assert box.open_holds() == 0
    box.cli("doctor")


def with_cache_reads(count: int, stream: bool) -> Act:
    """An anthropic answer (7 input tokens, 3 output) whose usage counts `count` cache reads."""
    if stream:
        writes = anthropic_stream()
        counted = f'"input_tokens": 7, "cache_read_input_tokens": {count}'.encode()
        writes[0] = writes[0].replace(b'"input_tokens": 7', counted)
        return Act(200, writes, SSE)
    body = json.loads(anthropic_body())
    body["usage"]["cache_read_input_tokens"] = count
    return Act(200, [json.dumps(body).encode()])


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("route", ROUTES)
def test_a_negative_cache_read_count_is_none(
    box: HostileBox, hostile: HostileUpstream, route: str, stream: bool
) -> None:
    """`cache_read_input_tokens: -1000` beside 7 input tokens made the input count negative, so
    estimated, and the negative reads were then taken out of the estimate: 1,000 tokens more
    than the prompt charged at the input price (any such count up to the whole hold). A
    negative count is no count: the call is charged as one with no cache reads."""
    zero = settled(box, hostile, with_cache_reads(0, stream), route, stream)
    negative = settled(box, hostile, with_cache_reads(-1000, stream), route, stream)
    assert (zero["input_tokens"], zero["estimated"]) == (7, 0), zero
    for name in ("cost_nanos", "status", "input_tokens", "output_tokens", "estimated",
                 "cache_read_tokens"):  # fmt: skip
        assert negative[name] == zero[name], (name, negative, zero)
    assert box.open_holds() == 0


def with_chat_counts(count: Any, stream: bool) -> Act:
    """An openai answer whose usage gives `count` for its prompt and completion tokens."""
    usage = {"prompt_tokens": count, "completion_tokens": count, "total_tokens": 10}
    if stream:
        return Act(200, [*chat_stream()[:-2], chat_chunk(usage=usage), b"data: [DONE]\n\n"], SSE)
    body = json.loads(chat_body())
    body["usage"] = usage
    return Act(200, [json.dumps(body).encode()])


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("route", ROUTES)
def test_counts_that_are_booleans_are_no_counts(
    box: HostileBox, hostile: HostileUpstream, route: str, stream: bool
) -> None:
    """`prompt_tokens: true` was read as the integer 1 (Python's bool is one): the call was
    charged a 1-token prompt and answer, not estimated as one with counts as strings is."""
    text = settled(box, hostile, with_chat_counts("3", stream), route, stream, "ho")
    true = settled(box, hostile, with_chat_counts(True, stream), route, stream, "ho")
    assert text["estimated"] == 1 and text["input_tokens"] > 1, text
    for name in ("status", "input_tokens", "output_tokens", "cost_nanos", "estimated"):
        assert true[name] == text[name], (name, true, text)


def with_native_counts(count: Any) -> Act:
    """A native Responses answer whose usage gives `count` for its input and output tokens."""
    body = json.loads(responses_body())
    body["usage"] = {"input_tokens": count, "output_tokens": count, "total_tokens": 10}
    return Act(200, [json.dumps(body).encode()])


def test_counts_that_are_booleans_are_no_counts_from_a_native_responses_upstream(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """The same of a provider serving the Responses API itself (`hr`)."""
    text = settled(box, hostile, with_native_counts("3"), "responses", False, "hr")
    true = settled(box, hostile, with_native_counts(True), "responses", False, "hr")
    assert text["estimated"] == 1 and text["input_tokens"] > 1, text
    for name in ("status", "input_tokens", "output_tokens", "cost_nanos", "estimated"):
        assert true[name] == text[name], (name, true, text)


@pytest.mark.parametrize("count", ["12", True, -5], ids=["string", "true", "negative"])
def test_a_count_tokens_answer_whose_count_is_no_count_is_a_502(
    box: HostileBox, hostile: HostileUpstream, count: Any
) -> None:
    """An anthropic upstream's count_tokens answer of `input_tokens: true` (or -5) was relayed
    as it came, a 200 that Claude Code takes for its context's size; it is no count, as one
    written as a string is not: a 502 that says so."""
    _, key = box.new_user("10")
    hostile.push(Act(200, [json.dumps({"input_tokens": 12}).encode()]))
    hostile.push(Act(200, [json.dumps({"input_tokens": count}).encode()]))
    body = {"model": "ha/m", "messages": [{"role": "user", "content": "hi"}]}
    with box.http(key) as client:
        counted = client.post("/v1/messages/count_tokens", json=body)
        answer = client.post("/v1/messages/count_tokens", json=body)
    assert (counted.status_code, counted.json()) == (200, {"input_tokens": 12}), counted.text
    assert answer.status_code == 502, answer.text
    assert answer.json()["error"]["message"] == (
        "the upstream's count_tokens answer has no input_tokens"
    ), answer.text
    assert [seen.path for seen in hostile.seen] == ["/v1/messages/count_tokens"] * 2
