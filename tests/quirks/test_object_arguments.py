"""llama.cpp's server (builds of March 2026, and any run with `--tool-args-object`) gives a tool
call's `arguments` as a JSON object, not the JSON string OpenAI gives. Translated to the
Messages API (a tool_use `input`) and to the Responses API (a function_call's `arguments`
string), the arguments must arrive whole, streamed or not; a chat client gets them as sent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.compatible_wire import BASE, DONE, chunk, event
from tests.fakes.openai_upstream import Reply
from tests.quirks.conftest import MODEL
from tests.responses.conftest import ResponsesBox

pytestmark = pytest.mark.timeout(60)
ARGS = {"city": "Paris", "days": 3}
CALL = {"id": "Xk2pQ9fR", "type": "function", "function": {"name": "forecast", "arguments": ARGS}}
USAGE = {"prompt_tokens": 70, "completion_tokens": 20, "total_tokens": 90}
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}


def _stream() -> list[bytes]:
    first = chunk({"role": "assistant", "content": None, "tool_calls": [{"index": 0, **CALL}]})
    return [event(first), event(chunk({}, "tool_calls")),
            event(BASE | {"choices": [], "usage": USAGE}), DONE]  # fmt: skip


def _answer() -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [CALL]}
    return json.dumps({"id": "chatcmpl-lc", "object": "chat.completion", "created": 1,
                       "model": "gguf", "usage": USAGE,
                       "choices": [{"index": 0, "message": message,
                                    "finish_reason": "tool_calls"}]}).encode()  # fmt: skip


def _push(box: ResponsesBox, stream: bool) -> None:
    if stream:
        box.openai_fake.push(Reply(raw=_stream()))
    else:
        box.openai_fake.push(Reply(raw=[_answer()], content_type="application/json"))


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
def test_object_arguments_become_the_tool_use_input(box: ResponsesBox, stream: bool) -> None:
    _, key = box.new_key()
    _push(box, stream)
    request: dict[str, Any] = {
        "model": MODEL, "max_tokens": 300,
        "tools": [{"name": "forecast", "input_schema": SCHEMA}],
        "messages": [{"role": "user", "content": "Weather in Paris for 3 days?"}],
    }  # fmt: skip
    client = box.client(key)
    if stream:
        with client.messages.stream(**request) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**request)
    assert [(b.type, b.input) for b in message.content] == [("tool_use", ARGS)]


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
def test_object_arguments_become_the_function_call_arguments(
    box: ResponsesBox, stream: bool
) -> None:
    _, key = box.new_key()
    _push(box, stream)
    tool = {"type": "function", "name": "forecast", "parameters": SCHEMA}
    client = box.openai(key)
    if stream:
        with client.responses.stream(model=MODEL, input="Paris, 3 days?", tools=[tool]) as events:
            final = events.get_final_response()
    else:
        final = client.responses.create(model=MODEL, input="Paris, 3 days?", tools=[tool])
    calls = [(i.type, i.name, json.loads(i.arguments)) for i in final.output]
    assert calls == [("function_call", "forecast", ARGS)]


def test_a_chat_client_gets_the_object_as_sent(box: ResponsesBox) -> None:
    _, key = box.new_key()
    _push(box, False)
    answer = box.openai(key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Paris?"}]
    )  # fmt: skip
    assert answer.choices[0].message.tool_calls[0].function.arguments == ARGS
