"""A native Responses stream cut at the output cap: the items left open are closed (their open
parts' and arguments' `.done` events, then `response.output_item.done`), and its
`response.incomplete` carries what was streamed of every item left open (text, refusal, a
function call's arguments), as OpenAI's incomplete response would; items already done stay as
they were (gateway/dialects.py, providers/responses_closing.py)."""

from __future__ import annotations

import json
from typing import Any, cast

from codelace_box.gateway.dialects import NativeResponsesEvents
from codelace_box.providers.base import Usage

MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "status": "in_progress",
           "content": []}  # fmt: skip
CALL = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "look",
        "arguments": "", "status": "in_progress"}  # fmt: skip
DONE = {"id": "rs_1", "type": "reasoning", "summary": [], "status": "completed"}


def stream() -> list[dict[str, Any]]:
    """A reasoning item done, a message with a text and a refusal part open, and a function
    call open, each with deltas, in the order OpenAI streams them."""
    text, refusal = {"type": "output_text", "text": "", "annotations": []}, {
        "type": "refusal", "refusal": ""}  # fmt: skip
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress",
                                                  "output": []}},
        {"type": "response.output_item.added", "output_index": 0, "item": DONE},
        {"type": "response.output_item.done", "output_index": 0, "item": DONE},
        {"type": "response.output_item.added", "output_index": 1, "item": MESSAGE},
        {"type": "response.content_part.added", "output_index": 1, "content_index": 0,
         "part": text},
        {"type": "response.output_text.delta", "output_index": 1, "content_index": 0,
         "delta": "Hel"},
        {"type": "response.output_text.delta", "output_index": 1, "content_index": 0,
         "delta": "lo"},
        {"type": "response.content_part.done", "output_index": 1, "content_index": 0,
         "part": text | {"text": "Hello"}},
        {"type": "response.content_part.added", "output_index": 1, "content_index": 1,
         "part": refusal},
        {"type": "response.refusal.delta", "output_index": 1, "content_index": 1,
         "delta": "No"},
        {"type": "response.output_item.added", "output_index": 2, "item": CALL},
        {"type": "response.function_call_arguments.delta", "output_index": 2,
         "delta": '{"q": '},
        {"type": "response.function_call_arguments.delta", "output_index": 2, "delta": '"x'},
    ]  # fmt: skip
    return [event | {"sequence_number": number} for number, event in enumerate(events)]


def test_the_cut_carries_what_was_streamed_of_each_open_item() -> None:
    events = NativeResponsesEvents(cast(Any, None))  # the call is only carried along
    for event in stream():
        events.chunk(event)
    (frame,) = events.cut(Usage(5, 9), 1_500)
    sent = [json.loads(line.removeprefix("data: ")) for line in frame.decode().splitlines()
            if line.startswith("data: ")]  # fmt: skip
    *closing, incomplete = sent
    assert incomplete["type"] == "response.incomplete"
    assert [e["sequence_number"] for e in sent] == list(range(len(stream()), len(stream()) + 6))
    response = incomplete["response"]
    # the open items closed first, as OpenAI closes them at max_output_tokens: the refusal
    # part (the text part was done), the message, the call's arguments, the call
    assert [(e["type"], e["output_index"], e.get("content_index")) for e in closing] == [
        ("response.refusal.done", 1, 1), ("response.content_part.done", 1, 1),
        ("response.output_item.done", 1, None), ("response.function_call_arguments.done", 2, None),
        ("response.output_item.done", 2, None)]  # fmt: skip
    assert closing[0]["refusal"] == "No" and closing[1]["part"]["refusal"] == "No"
    assert closing[3]["arguments"] == '{"q": "x' and closing[3]["item_id"] == "fc_1"
    assert [closing[2]["item"], closing[4]["item"]] == response["output"][1:]
    assert response["id"] == "resp_1" and response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    done, message, call = response["output"]
    assert done == DONE
    assert message["status"] == "incomplete"
    assert [part.get("text", part.get("refusal")) for part in message["content"]] == [
        "Hello", "No"]  # fmt: skip
    assert call["status"] == "incomplete" and call["arguments"] == '{"q": "x'
    assert response["usage"]["output_tokens"] == 9 and response["usage"]["cost_usd"] > 0
