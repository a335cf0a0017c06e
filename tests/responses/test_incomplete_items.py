"""An answer stopped short (the output cap, a content filter) is `incomplete`, and so is the
output item it stopped in, as OpenAI marks it: a client that acts on finished items (runs a
function call, shows a message as final) can tell the cut one from the whole ones."""

from __future__ import annotations

import json

from tests.fakes.openai_upstream import Reply
from tests.responses.conftest import OPENAI_MODEL, ResponsesBox

CITY = {"type": "object", "properties": {"city": {"type": "string"}}}
WEATHER = {"type": "function", "name": "get_weather", "parameters": CITY}
CALL = {"name": "get_weather", "arguments": json.dumps({"city": "Oslo"})}


def test_a_stream_cut_at_the_cap_leaves_its_last_item_incomplete(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="start", endless=" more"))
    with fresh.openai(key).responses.stream(
        model=OPENAI_MODEL, input="Go on", max_output_tokens=16
    ) as stream:
        events = list(stream)
    last = events[-1]
    assert last.type == "response.incomplete"
    (message,) = last.response.output
    assert message.status == "incomplete"
    (done,) = [e for e in events if e.type == "response.output_item.done"]
    assert done.item.status == "incomplete"  # type: ignore[union-attr]


def test_a_message_or_call_cut_by_a_length_stop_is_incomplete(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    client = fresh.openai(key)
    fresh.openai_fake.push(
        Reply(content="Checking.", finish_reason="length"),
        Reply(tool_calls=[CALL], finish_reason="length"),
    )
    answer = client.responses.create(model=OPENAI_MODEL, input="Weather?", tools=[WEATHER])
    assert answer.status == "incomplete"
    assert [item.status for item in answer.output] == ["incomplete"]  # type: ignore[union-attr]
    with client.responses.stream(model=OPENAI_MODEL, input="Weather?", tools=[WEATHER]) as stream:
        events = list(stream)
    (call,) = events[-1].response.output  # type: ignore[union-attr]
    assert (call.type, call.status) == ("function_call", "incomplete")
