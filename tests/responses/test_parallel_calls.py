"""Parallel tool calls from chat upstreams that do not number them as OpenAI does, through a
real box and the real openai SDK: each call is its own `function_call` item.

OpenAI gives each parallel call its own `index`; some OpenAI-compatible servers put every call
at index 0 (vLLM-based servers before their fix, dynamo) or leave `index` out (Gemini's
OpenAI-compatible endpoint), each call starting with its own `id`. A new `id` is a new call.
Others send every call's header before any arguments, then the arguments interleaved: a call
that begins while the open one's arguments are not whole JSON is held back and follows it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import openai_chunk
from tests.responses.conftest import OPENAI_MODEL, ResponsesBox

CITY = {"type": "object", "properties": {"city": {"type": "string"}}}
WEATHER = {"type": "function", "name": "get_weather", "parameters": CITY}
USAGE = {"prompt_tokens": 30, "completion_tokens": 20, "total_tokens": 50}


def call_delta(index: int | None, call_id: str | None, arguments: str) -> dict[str, Any]:
    call: dict[str, Any] = {"function": {"arguments": arguments}}
    if index is not None:
        call["index"] = index
    if call_id is not None:
        call |= {"id": call_id, "type": "function"}
        call["function"]["name"] = "get_weather"
    return {"tool_calls": [call]}


def upstream(index: int | None) -> list[bytes]:
    """Two calls, Oslo then Lima, both at `index` (None: no index), in 2 pieces each."""
    deltas = [
        {"role": "assistant", "content": None},
        call_delta(index, "call_oslo", '{"city": '),
        call_delta(index, None, '"Oslo"}'),
        call_delta(index, "call_lima", '{"city": '),
        call_delta(index, None, '"Lima"}'),
    ]
    frames = [openai_chunk(delta) for delta in deltas]
    frames.append(openai_chunk({}, finish="tool_calls"))
    return [*frames, openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n"]


@pytest.mark.parametrize("index", [0, None])
def test_calls_sharing_an_index_are_separate_items(fresh: ResponsesBox, index: int | None) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(raw=upstream(index)))
    client = fresh.openai(key)
    with client.responses.stream(model=OPENAI_MODEL, input="Weather?", tools=[WEATHER]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    calls = [(c.call_id, json.loads(c.arguments)) for c in final.output if c.type != "message"]
    assert calls == [("call_oslo", {"city": "Oslo"}), ("call_lima", {"city": "Lima"})]
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert [json.loads(e.arguments) for e in done] == [{"city": "Oslo"}, {"city": "Lima"}]
    assert [e.output_index for e in done] == [0, 1]
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_arguments_done_names_the_function(fresh: ResponsesBox) -> None:
    """OpenAI's `response.function_call_arguments.done` carries the function's `name` (a
    required field in its current types; strict clients fail to read the event without it)."""
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(raw=upstream(None)))
    with fresh.openai(key).responses.stream(
        model=OPENAI_MODEL, input="Weather?", tools=[WEATHER]
    ) as stream:
        done = [e for e in stream if e.type == "response.function_call_arguments.done"]
    assert [e.to_dict().get("name") for e in done] == ["get_weather", "get_weather"]


def interleaved() -> list[bytes]:
    """Both headers first, then the arguments of the two calls interleaved."""
    deltas = [
        {"role": "assistant", "content": None},
        call_delta(0, "call_oslo", ""),
        call_delta(1, "call_lima", ""),
        call_delta(0, None, '{"city": '),
        call_delta(1, None, '{"city": "Lima"}'),
        call_delta(0, None, '"Oslo"}'),
    ]
    frames = [openai_chunk(delta) for delta in deltas]
    frames.append(openai_chunk({}, finish="tool_calls"))
    return [*frames, openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n"]


def test_interleaved_arguments_make_two_whole_calls(fresh: ResponsesBox) -> None:
    email, key = fresh.new_key()
    before = fresh.balance_nanos(email)
    fresh.openai_fake.push(Reply(raw=interleaved()))
    client = fresh.openai(key)
    with client.responses.stream(model=OPENAI_MODEL, input="Weather?", tools=[WEATHER]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert events[-1].type == "response.completed"
    calls = [(c.call_id, json.loads(c.arguments)) for c in final.output if c.type != "message"]
    assert calls == [("call_oslo", {"city": "Oslo"}), ("call_lima", {"city": "Lima"})]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert fresh.usage_rows(email)[-1]["status"] == "ok"
    assert fresh.balance_nanos(email)[0] < before[0]


CITIES = ("Oslo", "Lima", "Rome")


def one_id(stream: bool) -> list[bytes]:
    """Three calls, Oslo, Lima and Rome, at indexes 0 to 2 but all with the id `call_0`
    (DeepSeek, GLM and Kimi-style servers give parallel calls one id), streamed or whole."""
    calls = [{"id": "call_0", "type": "function",
              "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}
             for city in CITIES]  # fmt: skip
    if not stream:
        message = {"role": "assistant", "content": None, "tool_calls": calls}
        choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
        answer = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
                  "choices": [choice], "usage": USAGE}  # fmt: skip
        return [json.dumps(answer).encode()]
    deltas = [{"role": "assistant", "content": None}]
    deltas += [{"tool_calls": [call | {"index": i}]} for i, call in enumerate(calls)]
    frames = [openai_chunk(delta) for delta in deltas]
    frames.append(openai_chunk({}, finish="tool_calls"))
    return [*frames, openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n"]


def test_parallel_calls_given_one_id_get_ids_of_their_own(fresh: ResponsesBox) -> None:
    """Calls of one answer that share an upstream id are items of their own call_ids (the first
    keeps it), as the Messages translation makes them: two carried `call_0`, and the openai
    SDK's responses.stream failed ("Response snapshot has conflicting output identities"),
    while Codex had calls it could not tell apart; a third failed the stream (read as a
    piece of the first call, "the upstream interleaved the arguments of tool calls")."""
    _, key = fresh.new_key()
    client = fresh.openai(key)
    fresh.openai_fake.push(Reply(raw=one_id(stream=True)))
    with client.responses.stream(model=OPENAI_MODEL, input="Weather?", tools=[WEATHER]) as stream:
        final = stream.get_final_response()
    fresh.openai_fake.push(Reply(raw=one_id(stream=False), content_type="application/json"))
    whole = client.responses.create(model=OPENAI_MODEL, input="Weather?", tools=[WEATHER])
    for answer in (final, whole):
        calls = [(c.call_id, json.loads(c.arguments)) for c in answer.output if c.type != "message"]
        assert [args for _, args in calls] == [{"city": city} for city in CITIES]
        ids = [call_id for call_id, _ in calls]
        assert ids[0] == "call_0" and len(set(ids)) == 3
        assert all(i.startswith("call_") and len(i) <= 40 for i in ids)  # OpenAI's bound


def whole_at_zero() -> list[bytes]:
    """Two calls, each whole in one piece with its name, both at index 0 and neither with an
    id (a relay of Gemini's parallel calls, which Gemini sends whole)."""
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": None}]
    deltas += [{"tool_calls": [{"index": 0, "type": "function", "function": {
        "name": "get_weather", "arguments": json.dumps({"city": city})}}]}
        for city in ("Oslo", "Lima")]  # fmt: skip
    frames = [openai_chunk(delta) for delta in deltas]
    frames.append(openai_chunk({}, finish="tool_calls"))
    return [*frames, openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n"]


def test_whole_calls_at_one_index_without_ids_stay_apart_on_every_route(
    fresh: ResponsesBox,
) -> None:
    """Parallel calls that come each whole under its name but with neither a new index nor a
    new id are two calls for each SDK's stream helper: they were one call, its arguments
    '{"city": "Oslo"}{"city": "Lima"}' (Responses and chat) or the second call lost
    (Messages)."""
    _, key = fresh.new_key()
    want = [{"city": "Oslo"}, {"city": "Lima"}]
    fresh.openai_fake.push(*[Reply(raw=whole_at_zero()) for _ in range(3)])
    client = fresh.openai(key)
    with client.responses.stream(model=OPENAI_MODEL, input="Weather?", tools=[WEATHER]) as stream:
        final = stream.get_final_response()
    assert [json.loads(c.arguments) for c in final.output if c.type == "function_call"] == want
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": CITY}}]
    ask = [{"role": "user", "content": "Weather?"}]
    with client.chat.completions.stream(model=OPENAI_MODEL, messages=ask, tools=tools) as chat:
        calls = chat.get_final_completion().choices[0].message.tool_calls or []
    assert [json.loads(c.function.arguments) for c in calls] == want
    message_tools = [{"name": "get_weather", "input_schema": CITY}]
    with fresh.client(key).messages.stream(
        model=OPENAI_MODEL, max_tokens=100, messages=ask, tools=message_tools
    ) as messages:
        blocks = messages.get_final_message().content
    assert [b.input for b in blocks if b.type == "tool_use"] == want


def test_text_beside_the_last_piece_of_a_call_follows_the_call(fresh: ResponsesBox) -> None:
    """A delta holding both text and the rest of the open call's arguments (servers that
    stream text and calls side by side): the call ends whole, the text follows it in a message
    of its own. The text closed the call first and its rest failed the stream ("the upstream
    interleaved the arguments of tool calls", response.failed, which Codex retries)."""
    _, key = fresh.new_key()
    deltas = [
        {"role": "assistant", "content": None},
        call_delta(0, "call_oslo", '{"city": '),
        {"content": "Checking.", **call_delta(0, None, '"Oslo"}')},
    ]
    frames = [openai_chunk(delta) for delta in deltas]
    frames += [openai_chunk({}, finish="tool_calls"), openai_chunk({}, usage=USAGE)]
    fresh.openai_fake.push(Reply(raw=[*frames, b"data: [DONE]\n\n"]))
    client = fresh.openai(key)
    with client.responses.stream(model=OPENAI_MODEL, input="Weather?", tools=[WEATHER]) as stream:
        final = stream.get_final_response()
    [call, message] = final.output
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Oslo"}
    assert message.type == "message" and final.output_text == "Checking."


def sent_again() -> list[bytes]:
    """One call streamed in pieces, then sent again whole in a last piece with its id and name
    (gateways that end a streamed call with a consolidated one)."""
    header = {"index": 0, "id": "call_1", "type": "function"}
    whole = json.dumps({"city": "Oslo"})
    deltas: list[dict[str, Any]] = [
        {"role": "assistant", "content": None,
         "tool_calls": [header | {"function": {"name": "get_weather", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": whole}}]},
        {"tool_calls": [header | {"function": {"name": "get_weather", "arguments": whole}}]},
    ]  # fmt: skip
    frames = [openai_chunk(delta) for delta in deltas]
    frames.append(openai_chunk({}, finish="tool_calls"))
    return [*frames, openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n"]


def test_a_call_sent_again_whole_is_one_call_for_the_sdks(fresh: ResponsesBox) -> None:
    """The real openai SDK's stream helpers get one call (chat, Responses): the copy was a
    second call of the same id, which an agent runs a second time."""
    _, key = fresh.new_key()
    fresh.openai_fake.push(*[Reply(raw=sent_again()) for _ in range(2)])
    client = fresh.openai(key)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": CITY}}]
    ask = [{"role": "user", "content": "Weather?"}]
    with client.chat.completions.stream(model=OPENAI_MODEL, messages=ask, tools=tools) as chat:
        calls = chat.get_final_completion().choices[0].message.tool_calls or []
    assert [(c.id, json.loads(c.function.arguments)) for c in calls] == [
        ("call_1", {"city": "Oslo"})]  # fmt: skip
    with client.responses.stream(model=OPENAI_MODEL, input="Weather?", tools=[WEATHER]) as stream:
        final = stream.get_final_response()
    items = [(c.call_id, json.loads(c.arguments)) for c in final.output if c.type != "message"]
    assert items == [("call_1", {"city": "Oslo"})]
