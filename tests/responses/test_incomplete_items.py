"""An answer stopped short (the output cap, a content filter) is `incomplete`, and so is the
output item it stopped in, as OpenAI marks it: a client that acts on finished items (runs a
function call, shows a message as final) can tell the cut one from the whole ones; a call cut
in its arguments, handed back with its output, does not make the conversation unusable."""

from __future__ import annotations

import json

from tests.fakes.anthropic_upstream import Reply as AnthropicReply
from tests.fakes.openai_upstream import Reply
from tests.responses.conftest import ANTHROPIC_MODEL, OPENAI_MODEL, ResponsesBox

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


def _cut_tool_use(partial_json: str) -> list[dict]:
    """An Anthropic tool_use block whose input stopped at max_tokens."""
    delta = {"type": "input_json_delta", "partial_json": partial_json}
    start = {"type": "tool_use", "id": "toolu_cut", "name": "get_weather", "input": {}}
    return [
        {"type": "content_block_start", "index": 0, "content_block": start},
        {"type": "content_block_delta", "index": 0, "delta": delta},
        {"type": "content_block_stop", "index": 0},
    ]


def test_a_call_cut_in_its_arguments_can_be_handed_back_to_claude(fresh: ResponsesBox) -> None:
    """Claude stopped by max_tokens in a tool call's input: the call item is incomplete with the
    arguments it got (not JSON). A client that records items as they finish (Codex) hands it
    back with an output saying so; Anthropic takes only an object as a tool_use's input, and the
    box answered that next turn, and every turn after it, 400 "input is not valid JSON"."""
    _, key = fresh.new_key()
    client = fresh.openai(key)
    cut = _cut_tool_use('{"city": "Os')
    fresh.fake.script(AnthropicReply(text="", extra_events=cut, stop_reason="max_tokens"))
    with client.responses.stream(model=ANTHROPIC_MODEL, input="Weather?", tools=[WEATHER]) as s:
        events = list(s)
    (call,) = events[-1].response.output  # type: ignore[union-attr]
    assert (call.status, call.arguments) == ("incomplete", '{"city": "Os')
    refused = "failed to parse function arguments: EOF while parsing a string"
    history = [
        {"role": "user", "content": "Weather?"},
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": refused},
        {"role": "user", "content": "Try again."},
    ]
    fresh.fake.script(AnthropicReply(text="Oslo: sunny."))
    answer = client.responses.create(model=ANTHROPIC_MODEL, input=history, tools=[WEATHER])
    assert answer.output_text == "Oslo: sunny."
    sent = fresh.fake.requests[-1].body["messages"]
    assert sent[1]["content"] == [
        {"type": "tool_use", "id": "toolu_cut", "name": "get_weather", "input": {}}
    ]
    assert sent[2]["content"][0]["content"] == refused
