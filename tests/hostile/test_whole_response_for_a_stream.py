"""A provider serving the Responses API itself (`--responses-api`) that answers a streamed call
with one whole JSON `response`, or an unstreamed call with a stream (a buffering proxy, a
compatible server that ignores `stream`): the upstream did the work and bills for it, so the
call is answered in the form it asked for and charged the usage the provider reported, as the
chat path does for the same mismatch (tests/quirks/test_answer_for_a_stream.py,
test_whole_message_for_a_stream.py). Both were a free 502 ("answered the stream request with no
stream", "a body that is not JSON"), the operator's loss, every SDK retry billed again."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.hostile_upstream import SSE, Act, HostileUpstream, responses_body, responses_stream
from tests.hostile.conftest import HostileBox

pytestmark = pytest.mark.timeout(60)
TEXT = "Hello there, this is the answer"  # responses_body's
COST = 7 * 1000 + 3 * 2000  # 7 input tokens at 1 USD a million, 3 output at 2
REASONING = {"id": "rs_1", "type": "reasoning", "encrypted_content": "ZW5j",
             "summary": [{"type": "summary_text", "text": "Look it up."}]}  # fmt: skip
CALL = {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_1",
        "name": "weather", "arguments": '{"city": "Oslo"}'}  # fmt: skip


def assert_charged(box: HostileBox, email: str) -> None:
    row = box.last_row(email)
    assert (row["status"], row["estimated"], row["cost_nanos"]) == ("ok", 0, COST), row
    assert box.balance_nanos(email) == (10 * 10**9 - COST, 0)


def test_a_whole_response_to_a_stream_is_streamed_and_charged(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    email, key = box.new_user("10")
    hostile.push(Act(200, [responses_body()]))
    with box.sdk(key).responses.stream(model="hr/m", input="hi") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == TEXT
    assert (final.status, final.model) == ("completed", "hr/m")
    assert (final.usage.input_tokens, final.usage.output_tokens) == (7, 3)
    assert_charged(box, email)


def test_its_reasoning_and_tool_call_reach_the_sdk(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """Every kind of item comes through whole, in order, as the SDK's stream helper assembles
    it (the call's arguments streamed as its delta)."""
    email, key = box.new_user("10")
    body: dict[str, Any] = json.loads(responses_body())
    body["output"] = [REASONING, CALL]
    hostile.push(Act(200, [json.dumps(body).encode()]))
    with box.sdk(key).responses.stream(model="hr/m", input="Oslo?") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds, kinds
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
    output = [item.model_dump(exclude_none=True) for item in final.output]
    assert output[0] | {"status": None} == REASONING | {"status": None}, output
    assert output[1] == CALL, output
    assert_charged(box, email)


def test_a_stream_to_an_unstreamed_call_is_its_final_response_charged(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    email, key = box.new_user("10")
    hostile.push(Act(200, responses_stream(), SSE))
    reply = box.post(key, "responses", "hr", stream=False)
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert (answer["object"], answer["status"]) == ("response", "completed"), answer
    assert answer["model"] == "hr/m"
    assert answer["output"][0]["content"][0]["text"] == "Hello", answer
    assert (answer["usage"]["input_tokens"], answer["usage"]["output_tokens"]) == (7, 3)
    assert_charged(box, email)


def test_a_final_event_without_its_output_gives_the_items_streamed(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """A server whose `response.completed` leaves `output` empty: the answer holds the items
    its `response.output_item.done` events gave."""
    email, key = box.new_user("10")
    writes = responses_stream()
    final = json.loads(writes[-1].split(b"data: ", 1)[1])
    final["response"]["output"] = []
    writes[-1] = b"event: response.completed\ndata: " + json.dumps(final).encode() + b"\n\n"
    hostile.push(Act(200, writes, SSE))
    reply = box.post(key, "responses", "hr", stream=False)
    assert reply.status_code == 200, reply.text
    assert reply.json()["output"][0]["content"][0]["text"] == "Hello", reply.text
    assert_charged(box, email)


def test_an_incomplete_whole_response_ends_its_stream_incomplete(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """A response cut at its max_output_tokens ends the stream with `response.incomplete`,
    charged as a completed one."""
    email, key = box.new_user("10")
    body: dict[str, Any] = json.loads(responses_body())
    body |= {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    hostile.push(Act(200, [json.dumps(body).encode()]))
    with box.sdk(key).responses.stream(model="hr/m", input="hi") as stream:
        kinds = [event.type for event in stream]
    assert kinds[-1] == "response.incomplete", kinds
    assert "response.output_text.delta" in kinds, kinds
    assert_charged(box, email)
