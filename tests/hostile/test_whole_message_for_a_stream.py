"""An `anthropic` upstream (a compatible server, a buffering proxy) that answers a streamed call
with one whole JSON `message`: the upstream did the work and bills for it, so the box relays
that answer as the stream its client asked for, on every route, and charges its usage, as it
does for an OpenAI-compatible server's whole completion (tests/quirks/test_answer_for_a_stream.py).
It was a free 502 "answered the stream request with no stream" whose message carried the
answer's text; the SDKs retried it, each try billed to the operator."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from tests.fakes.hostile_upstream import (
    SSE,
    Act,
    HostileUpstream,
    anthropic_body,
    anthropic_event,
    anthropic_stream,
)
from tests.hostile.conftest import ROUTES, HostileBox, events
from tests.support import sdk_http

pytestmark = pytest.mark.timeout(60)
TEXT = "Hello there, this is the answer"  # anthropic_body's
COST = 7 * 1000 + 3 * 2000  # 7 input tokens at 1 USD a million, 3 output at 2


def streamed_text(route: str, text: str) -> str:
    """The answer's text a streaming client of `route` was given."""
    out = []
    for data in events(text):
        if data == "[DONE]":
            continue
        event = json.loads(data)
        if route == "chat":
            out += [c["delta"].get("content") or "" for c in event["choices"]]
        elif route == "messages" and event["type"] == "content_block_delta":
            out.append(event["delta"].get("text", ""))
        elif route == "responses" and event["type"] == "response.output_text.delta":
            out.append(event["delta"])
    return "".join(out)


@pytest.mark.parametrize("route", ROUTES)
def test_a_whole_message_to_a_stream_is_streamed_and_charged(
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    email, key = box.new_user("10")
    hostile.push(Act(200, [anthropic_body()]))
    answer = box.post(key, route, "ha", stream=True)
    assert answer.status_code == 200, answer.text[:500]
    assert streamed_text(route, answer.text) == TEXT, answer.text
    row = box.last_row(email)
    assert (row["status"], row["estimated"], row["cost_nanos"]) == ("ok", 0, COST), row
    assert box.balance_nanos(email) == (10 * 10**9 - COST, 0)


def test_its_thinking_and_tool_call_reach_the_anthropic_sdk(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """Every kind of block: thinking with its signature, text, a tool call with its input; the
    SDK's stream helper assembles the same message."""
    email, key = box.new_user("10")
    body: dict[str, Any] = json.loads(anthropic_body())
    body["stop_reason"] = "tool_use"
    body["content"] = [
        {"type": "thinking", "thinking": "Look it up.", "signature": "c2ln"},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
    ]
    hostile.push(Act(200, [json.dumps(body).encode()]))
    client = anthropic.Anthropic(base_url=box.url, api_key=key, max_retries=0,
                                 http_client=sdk_http(anthropic))  # fmt: skip
    with client.messages.stream(
        model="ha/m", max_tokens=100, messages=[{"role": "user", "content": "Oslo?"}]
    ) as stream:
        message = stream.get_final_message()
    assert [block.model_dump(exclude_none=True) for block in message.content] == [
        {"type": "thinking", "thinking": "Look it up.", "signature": "c2ln"},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
    ]
    assert (message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == (
        "tool_use", 7, 3)  # fmt: skip
    assert box.last_row(email)["cost_nanos"] == COST


def answered_text(route: str, answer: dict[str, Any]) -> str:
    """The text of an unstreamed answer of `route`."""
    if route == "chat":
        return str(answer["choices"][0]["message"]["content"])
    if route == "messages":
        return "".join(block["text"] for block in answer["content"] if block["type"] == "text")
    return "".join(part["text"] for item in answer["output"] if item["type"] == "message"
                   for part in item["content"])  # fmt: skip


@pytest.mark.parametrize("route", ROUTES)
def test_a_stream_to_an_unstreamed_call_is_added_up_and_charged(
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    """The other way round (a server or proxy that always streams): its stream is added up
    into the whole message asked for and charged its usage; it was a free 502 "a body that is
    not JSON"."""
    email, key = box.new_user("10")
    hostile.push(Act(200, anthropic_stream(), SSE))
    answer = box.post(key, route, "ha", stream=False)
    assert answer.status_code == 200, answer.text[:500]
    assert answered_text(route, answer.json()) == "Hello", answer.text
    row = box.last_row(email)
    assert (row["status"], row["estimated"], row["cost_nanos"]) == ("ok", 0, COST), row
    assert box.balance_nanos(email) == (10 * 10**9 - COST, 0)


def test_a_streamed_tool_call_is_added_up_for_an_unstreamed_messages_call(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """Thinking with its signature and a tool call whose input came in pieces: the message
    the anthropic SDK gets holds them whole."""
    _, key = box.new_user("10")
    writes = anthropic_stream()[:1]  # message_start
    blocks = [({"type": "thinking", "thinking": "", "signature": ""},
               [{"type": "thinking_delta", "thinking": "Look it up."},
                {"type": "signature_delta", "signature": "c2ln"}]),
              ({"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}},
               [{"type": "input_json_delta", "partial_json": '{"city": '},
                {"type": "input_json_delta", "partial_json": '"Oslo"}'}])]  # fmt: skip
    for index, (opened, deltas) in enumerate(blocks):
        writes.append(anthropic_event({"type": "content_block_start", "index": index,
                                       "content_block": opened}))  # fmt: skip
        writes += [anthropic_event({"type": "content_block_delta", "index": index, "delta": d})
                   for d in deltas]  # fmt: skip
        writes.append(anthropic_event({"type": "content_block_stop", "index": index}))
    writes += [anthropic_event({"type": "message_delta", "usage": {"output_tokens": 3},
                                "delta": {"stop_reason": "tool_use", "stop_sequence": None}}),
               anthropic_event({"type": "message_stop"})]  # fmt: skip
    hostile.push(Act(200, writes, SSE))
    client = anthropic.Anthropic(base_url=box.url, api_key=key, max_retries=0,
                                 http_client=sdk_http(anthropic))  # fmt: skip
    message = client.messages.create(
        model="ha/m", max_tokens=100, messages=[{"role": "user", "content": "Oslo?"}]
    )
    assert [block.model_dump(exclude_none=True) for block in message.content] == [
        {"type": "thinking", "thinking": "Look it up.", "signature": "c2ln"},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
    ]
    assert (message.stop_reason, message.usage.output_tokens) == ("tool_use", 3)


ODD_BLOCKS = [1, None, "x", {"type": "text", "text": 5}, {"text": "no type"},
              {"type": "tool_use", "id": "t", "name": "n", "input": "not an object"},
              {"type": "text", "text": "Hello"},
              {"type": "redacted_thinking", "data": "c2Vh"}]  # fmt: skip


@pytest.mark.parametrize("route", ROUTES)
def test_blocks_no_stream_could_hold_are_left_out(
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    """A whole message's blocks that are no blocks, or whose text or input is of the wrong
    type, are left out of the stream it stands for (a text block's text of 5 made the
    translating stream fail with an internal error): the rest is relayed and charged."""
    email, key = box.new_user("10")
    body = json.loads(anthropic_body())
    body["content"] = ODD_BLOCKS
    hostile.push(Act(200, [json.dumps(body).encode()]))
    answer = box.post(key, route, "ha", stream=True)
    assert answer.status_code == 200, answer.text[:500]
    assert streamed_text(route, answer.text) == "Hello", answer.text
    assert box.last_row(email)["cost_nanos"] == COST


@pytest.mark.parametrize("route", ROUTES)
def test_a_stream_with_odd_indexes_and_deltas_is_added_up_without_them(
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    """Events whose block index is a list (which no dict takes: an internal error), a delta
    of the wrong type, a message_delta whose delta is no object: left out of the message."""
    email, key = box.new_user("10")
    writes = anthropic_stream()
    writes[1:1] = [
        anthropic_event({"type": "content_block_start", "index": [1],
                         "content_block": {"type": "text", "text": ""}}),
        anthropic_event({"type": "content_block_delta", "index": [1],
                         "delta": {"type": "text_delta", "text": "x"}}),
        anthropic_event({"type": "message_delta", "delta": "x"}),
    ]  # fmt: skip
    writes.insert(-3, anthropic_event({"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": 5}}))  # fmt: skip
    hostile.push(Act(200, writes, SSE))
    answer = box.post(key, route, "ha", stream=False)
    assert answer.status_code == 200, answer.text[:500]
    assert answered_text(route, answer.json()) == "Hello", answer.text
    assert box.last_row(email)["cost_nanos"] == COST


@pytest.mark.parametrize("route", ["chat", "responses"])
def test_a_translated_stream_with_text_of_the_wrong_type_goes_on_without_it(
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    """(Of any anthropic stream, not only an added-up one.) A block start, text, thinking or
    tool input delta whose text is a number, translated to the OpenAI shapes: the stream failed
    with an internal error (len() of an int), the call free and a traceback in the log; such a
    piece is now no text, and the call is relayed and charged."""
    email, key = box.new_user("10")
    writes = anthropic_stream()
    odd = [({"type": "text", "text": 5}, {"type": "text_delta", "text": 5}),
           ({"type": "thinking", "thinking": 5}, {"type": "thinking_delta", "thinking": 5}),
           ({"type": "tool_use", "id": "t", "name": "n", "input": {}},
            {"type": "input_json_delta", "partial_json": 5})]  # fmt: skip
    for index, (opened, delta) in enumerate(odd, start=1):
        writes.insert(-3, anthropic_event({"type": "content_block_start", "index": index,
                                           "content_block": opened}))  # fmt: skip
        writes.insert(-3, anthropic_event({"type": "content_block_delta", "index": index,
                                           "delta": delta}))  # fmt: skip
        writes.insert(-3, anthropic_event({"type": "content_block_stop", "index": index}))
    hostile.push(Act(200, writes, SSE))
    answer = box.post(key, route, "ha", stream=True)
    assert "internal error" not in answer.text, answer.text
    assert streamed_text(route, answer.text) == "Hello", answer.text
    assert box.last_row(email)["status"] == "ok"
