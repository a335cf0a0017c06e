"""Native streams the box cuts at the reserved output cap end as the provider ends one that
stops at its own cap: Anthropic's (/v1/messages to an `anthropic` provider) with the open
block's `content_block_stop`, `message_delta` (stop_reason max_tokens, usage) and
`message_stop`; a native Responses stream (`--responses-api`) with the open item's closing
events (`response.output_text.done`, `.content_part.done`, or the arguments' `.done`, then
`response.output_item.done`) before `response.incomplete`. The real anthropic and openai SDKs'
stream helpers read them without an error and assemble the answer cut there."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.hostile_upstream import SSE, Act, HostileUpstream, anthropic_event, sse
from tests.hostile.conftest import HostileBox
from tests.support import sdk_http

pytestmark = pytest.mark.timeout(60)
PIECES = 40  # output pieces the upstream streams on, past the cap of 5 tokens
CAP = 5

# The open Anthropic block of each case: its start and one of its deltas.
BLOCKS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "text": ({"type": "text", "text": ""}, {"type": "text_delta", "text": "ab"}),
    "tool_use": ({"type": "tool_use", "id": "toolu_1", "name": "look", "input": {}},
                 {"type": "input_json_delta", "partial_json": "ab"}),
    "thinking": ({"type": "thinking", "thinking": ""},
                 {"type": "thinking_delta", "thinking": "ab"}),
}  # fmt: skip


def anthropic_writes(block: str) -> list[bytes | float]:
    """message_start, the block started, and more deltas than the cap allows (then the end
    the upstream would send, never reached)."""
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [],
               "stop_reason": None, "stop_sequence": None,
               "usage": {"input_tokens": 7, "output_tokens": 1}}  # fmt: skip
    start, delta = BLOCKS[block]
    if block == "tool_use":  # the arguments' first piece opens the object
        first = {"type": "content_block_delta", "index": 0,
                 "delta": {"type": "input_json_delta", "partial_json": '{"q": "'}}  # fmt: skip
    else:
        first = {"type": "ping"}
    events = [{"type": "message_start", "message": message},
              {"type": "content_block_start", "index": 0, "content_block": start}, first,
              *({"type": "content_block_delta", "index": 0, "delta": delta}
                for _ in range(PIECES)),
              {"type": "content_block_stop", "index": 0},
              {"type": "message_delta", "usage": {"output_tokens": 90},
               "delta": {"stop_reason": "end_turn", "stop_sequence": None}},
              {"type": "message_stop"}]  # fmt: skip
    return [anthropic_event(event) for event in events]


@pytest.mark.parametrize("block", list(BLOCKS))
def test_a_cut_anthropic_stream_ends_as_anthropic_ends_one_at_max_tokens(
    box: HostileBox, hostile: HostileUpstream, block: str
) -> None:
    import anthropic

    email, key = box.new_user("10")
    hostile.push(Act(200, anthropic_writes(block), SSE))
    client = anthropic.Anthropic(base_url=box.url, api_key=key, max_retries=0, timeout=30,
                                 http_client=sdk_http(anthropic))  # fmt: skip
    with client.messages.stream(
        model="ha/m", max_tokens=CAP, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"], kinds
    assert final.stop_reason == "max_tokens"
    assert [part.type for part in final.content] == [block]
    streamed = kinds.count("content_block_delta") - (block == "tool_use")
    assert 0 < streamed < PIECES
    row = box.last_row(email)
    assert (row["status"], row["error_code"]) == ("ok", "output_cap")
    assert final.usage.output_tokens == row["output_tokens"] >= CAP
    assert final.usage.input_tokens == row["input_tokens"] == 7
    assert 0 < row["cost_nanos"] <= row["hold_nanos"]


MESSAGE = {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant",
           "content": []}  # fmt: skip
CALL = {"id": "fc_1", "type": "function_call", "status": "in_progress", "call_id": "call_1",
        "name": "look", "arguments": ""}  # fmt: skip


def responses_writes(item: str) -> list[bytes | float]:
    """A native Responses stream: created, one item (a message, or a function call) with more
    deltas than the cap allows."""
    response = {"id": "resp_1", "object": "response", "created_at": 1, "status": "in_progress",
                "model": "m", "output": [], "usage": None}  # fmt: skip
    events: list[dict[str, Any]] = [{"type": "response.created", "response": response}]
    if item == "message":
        at = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
        events += [{"type": "response.output_item.added", "output_index": 0, "item": MESSAGE},
                   {"type": "response.content_part.added", **at,
                    "part": {"type": "output_text", "text": "", "annotations": []}},
                   *({"type": "response.output_text.delta", **at, "delta": "ab"}
                     for _ in range(PIECES))]  # fmt: skip
    else:
        at = {"item_id": "fc_1", "output_index": 0}
        pieces = ['{"q": "', *["ab"] * PIECES]
        events += [{"type": "response.output_item.added", "output_index": 0, "item": CALL},
                   *({"type": "response.function_call_arguments.delta", **at, "delta": p}
                     for p in pieces)]  # fmt: skip
    return [sse(event | {"sequence_number": n}, event=event["type"])
            for n, event in enumerate(events)]  # fmt: skip


def test_a_cut_native_responses_message_is_closed_before_response_incomplete(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    email, key = box.new_user("10")
    hostile.push(Act(200, responses_writes("message"), SSE))
    with box.sdk(key).responses.stream(model="hr/m", input="hi", max_output_tokens=CAP) as stream:
        events = list(stream)
    kinds = [event.type for event in events]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.incomplete"], kinds  # fmt: skip
    assert [event.sequence_number for event in events] == list(range(len(events)))
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert 0 < len(text) < 2 * PIECES
    done, part, item, incomplete = events[-4:]
    assert done.text == text and part.part.text == text
    assert item.item.status == "incomplete" and item.item.content[0].text == text
    assert incomplete.response.incomplete_details.reason == "max_output_tokens"
    assert incomplete.response.output[0].content[0].text == text
    assert_cut_and_metered(box, email, incomplete)


def test_a_cut_native_responses_function_call_is_closed_before_response_incomplete(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    email, key = box.new_user("10")
    hostile.push(Act(200, responses_writes("call"), SSE))
    with box.sdk(key).responses.stream(model="hr/m", input="hi", max_output_tokens=CAP) as stream:
        events = list(stream)
    kinds = [event.type for event in events]
    assert kinds[-3:] == ["response.function_call_arguments.done",
                          "response.output_item.done", "response.incomplete"], kinds  # fmt: skip
    assert [event.sequence_number for event in events] == list(range(len(events)))
    arguments = "".join(
        event.delta for event in events if event.type == "response.function_call_arguments.delta"
    )
    assert arguments.startswith('{"q": "ab') and len(arguments) < 2 * PIECES
    done, item, incomplete = events[-3:]
    assert (done.arguments, done.item_id, done.output_index) == (arguments, "fc_1", 0)
    assert item.item.status == "incomplete" and item.item.arguments == arguments
    assert item.item.call_id == "call_1" and item.item.name == "look"
    assert incomplete.response.output[0].arguments == arguments
    assert_cut_and_metered(box, email, incomplete)


def assert_cut_and_metered(box: HostileBox, email: str, incomplete: Any) -> None:
    row = box.last_row(email)
    assert (row["status"], row["error_code"]) == ("ok", "output_cap")
    assert incomplete.response.usage.output_tokens == row["output_tokens"] >= CAP
    assert 0 < row["cost_nanos"] <= row["hold_nanos"]
