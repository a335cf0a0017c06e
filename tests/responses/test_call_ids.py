"""A tool call whose upstream gave it no id (some OpenAI-compatible servers leave it out) gets a
`call_id` in OpenAI's form, short enough to go back to any upstream: OpenAI's Chat Completions
refuses a tool call id over 40 characters ("string too long"), so a thread handed back to it
would fail on every later turn."""

from __future__ import annotations

import json
import re

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import openai_chunk
from tests.responses.conftest import OPENAI_MODEL, ResponsesBox

CITY = {"type": "object", "properties": {"city": {"type": "string"}}}
WEATHER = {"type": "function", "name": "get_weather", "parameters": CITY}
USAGE = {"prompt_tokens": 30, "completion_tokens": 20, "total_tokens": 50}
OPENAI_CALL_ID = re.compile(r"call_[A-Za-z0-9]{24}")


def call_without_id() -> tuple[list[bytes], list[bytes]]:
    call = {"index": 0, "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}  # fmt: skip
    stream = [openai_chunk({"role": "assistant", "content": None}),
              openai_chunk({"tool_calls": [call]}), openai_chunk({}, finish="tool_calls"),
              openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n"]  # fmt: skip
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
    body = {"id": "c", "object": "chat.completion", "created": 1, "model": "m", "usage": USAGE,
            "choices": [choice]}  # fmt: skip
    return stream, [json.dumps(body).encode()]


def test_a_call_without_an_upstream_id_gets_an_openai_style_id(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    client = fresh.openai(key)
    stream, whole = call_without_id()
    fresh.openai_fake.push(Reply(raw=stream), Reply(raw=whole, content_type="application/json"))
    with client.responses.stream(model=OPENAI_MODEL, input="W?", tools=[WEATHER]) as events:
        streamed = events.get_final_response()
    answer = client.responses.create(model=OPENAI_MODEL, input="W?", tools=[WEATHER])
    for response in (streamed, answer):
        (call,) = response.output
        assert call.type == "function_call" and OPENAI_CALL_ID.fullmatch(call.call_id)
