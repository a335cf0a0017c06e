"""Values of the wrong JSON type where an upstream's answer names why it ended: an `openai`
upstream's `finish_reason` as an array, an object or a number, streamed and not, translated to
Anthropic's Messages shape and to the Responses API (and relayed on chat completions). Each is
answered with a sane reason and the call settled: charged, its hold released. And an `anthropic`
upstream's `citations`, as many as its answer holds, translated to the OpenAI shapes: left out,
so nothing grows with them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.hostile_upstream import (
    SSE,
    Act,
    HostileUpstream,
    anthropic_body,
    anthropic_event,
    anthropic_stream,
    chat_body,
    chat_stream,
    sse,
)
from tests.hostile.conftest import BODY_LIMIT, ROUTES, HostileBox, events

pytestmark = pytest.mark.timeout(60)
ODD = [["stop"], {"reason": "stop"}, 1, True]


def odd_body(reason: Any) -> bytes:
    body = json.loads(chat_body())
    body["choices"][0]["finish_reason"] = reason
    return json.dumps(body).encode()


def odd_stream(reason: Any) -> list[bytes]:
    writes = chat_stream()
    finish = json.loads(writes[-3].removeprefix(b"data: "))
    finish["choices"][0]["finish_reason"] = reason
    return [*writes[:-3], sse(finish), *writes[-2:]]


def ending(route: str, answer: Any, stream: bool) -> Any:
    """What the client was told about why the answer ended."""
    if route == "messages" and stream:
        deltas = [json.loads(e) for e in events(answer.text) if '"message_delta"' in e]
        return deltas[-1]["delta"]["stop_reason"]
    if route == "messages":
        return answer.json()["stop_reason"]
    if route == "responses" and stream:
        return json.loads(events(answer.text)[-1])["response"]["status"]
    if route == "responses":
        return answer.json()["status"]
    return None


@pytest.mark.parametrize("reason", ODD, ids=["array", "object", "number", "bool"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("route", ROUTES)
def test_a_finish_reason_of_the_wrong_type_ends_sanely_and_is_charged(
    box: HostileBox, hostile: HostileUpstream, route: str, stream: bool, reason: Any
) -> None:
    """STOP_REASONS.get(["stop"]) raises TypeError (unhashable): a reason that is no string is
    read as a natural end, never a 500, a stream cut short or a hold left open."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    act = Act(200, list(odd_stream(reason)), SSE) if stream else Act(200, [odd_body(reason)])
    hostile.push(act)
    answer = box.post(key, route, "ho", stream=stream)
    assert answer.status_code == 200, answer.text
    if stream:
        assert '"type": "error"' not in answer.text and "response.failed" not in answer.text
    assert ending(route, answer, stream) in (None, "end_turn", "completed"), answer.text
    row = box.last_row(email)
    assert row["status"] == "ok" and 0 < row["cost_nanos"] <= row["hold_nanos"], row
    assert box.balance_nanos(email) == (start - row["cost_nanos"], 0)
    assert box.open_holds() == 0


CITATION = {"type": "char_location", "cited_text": "c" * 40, "document_index": 0,
            "document_title": "t", "start_char_index": 0, "end_char_index": 40}  # fmt: skip


def cited_body() -> bytes:
    """A message whose text block carries as many citations as the body limit lets in."""
    body = json.loads(anthropic_body())
    body["content"][0]["citations"] = []
    while len(json.dumps(body)) < BODY_LIMIT - 200:
        body["content"][0]["citations"].append(CITATION)
    return json.dumps(body).encode()


def cited_stream() -> list[bytes]:
    """A stream whose text block gets a citations_delta per citation between its text."""
    writes = anthropic_stream()
    delta = {"type": "content_block_delta", "index": 0,
             "delta": {"type": "citations_delta", "citation": CITATION}}  # fmt: skip
    return [*writes[:3], *[anthropic_event(delta)] * 100, *writes[3:]]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("route", ["chat", "responses"])
def test_anthropic_citations_are_left_out_of_a_translation(
    box: HostileBox, hostile: HostileUpstream, route: str, stream: bool
) -> None:
    """The OpenAI shapes have no Anthropic citations: the translation keeps the text alone,
    however many citations an upstream sends (a hostile one: as many as its limits allow)."""
    email, key = box.new_user("10")
    act = Act(200, list(cited_stream()), SSE) if stream else Act(200, [cited_body()])
    hostile.push(act)
    answer = box.post(key, route, "ha", stream=stream)
    assert answer.status_code == 200, answer.text
    assert "cited_text" not in answer.text and len(answer.text) < 8000, len(answer.text)
    assert "Hel" in answer.text
    row = box.last_row(email)
    assert row["status"] == "ok" and 0 < row["cost_nanos"] <= row["hold_nanos"], row


@pytest.mark.parametrize("odd", [5, None, ["a"], {"t": 1}], ids=["number", "null", "list", "obj"])
@pytest.mark.parametrize("route", ["chat", "responses"])
def test_a_whole_anthropic_answer_with_text_of_the_wrong_type_is_relayed_and_charged(
    box: HostileBox, hostile: HostileUpstream, route: str, odd: Any
) -> None:
    """An unstreamed anthropic answer whose text or thinking block held no string, translated
    to the OpenAI shapes, was a free 502 though the provider billed it (its stream, since the
    24th session, went on with such a piece as no text): now the same, relayed and charged."""
    email, key = box.new_user("10")
    body = json.loads(anthropic_body())
    body["content"] = [
        {"type": "thinking", "thinking": odd, "signature": "s"},
        {"type": "text", "text": odd},
        {"type": "text", "text": "Hello"},
    ]
    hostile.push(Act(200, [json.dumps(body).encode()]))
    answer = box.post(key, route, "ha", stream=False)
    assert answer.status_code == 200, answer.text
    assert "Hello" in answer.text, answer.text
    row = box.last_row(email)
    assert row["status"] == "ok" and 0 < row["cost_nanos"] <= row["hold_nanos"], row
