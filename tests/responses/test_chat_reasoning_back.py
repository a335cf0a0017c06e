"""A chat model's own reasoning (`reasoning_content`: DeepSeek, Kimi, vLLM reasoning parsers)
goes back to it in a tool loop. Codex hands back each reasoning item as it got it (content
`reasoning_text` included); the box gives that text back as the assistant message's
`reasoning_content` when the request goes to the model that wrote it. DeepSeek's thinking mode
refuses a tool-call turn without it (400 "The reasoning_content in the thinking mode must be
passed back to the API"); any other model never sees it (some refuse the field)."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import openai_chunk
from tests.responses.conftest import NATIVE_MODEL, OPENAI_MODEL, ResponsesBox

CITY = {"type": "object", "properties": {"city": {"type": "string"}}}
TOOLS: Any = [{"type": "function", "name": "get_weather", "parameters": CITY}]
THOUGHT = "The user wants Oslo's weather; call the tool."
USAGE = {"prompt_tokens": 30, "completion_tokens": 20, "total_tokens": 50}


def thinking_then_call() -> list[bytes]:
    call = {"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}  # fmt: skip
    deltas = [{"role": "assistant", "content": None}, {"reasoning_content": THOUGHT[:20]},
              {"reasoning_content": THOUGHT[20:]}, {"tool_calls": [call]}]  # fmt: skip
    frames = [openai_chunk(delta) for delta in deltas]
    frames.append(openai_chunk({}, finish="tool_calls"))
    return [*frames, openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n"]


def test_the_models_own_reasoning_goes_back_with_its_tool_call(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    client = fresh.openai(key)
    fresh.openai_fake.push(Reply(raw=thinking_then_call()), Reply(content="3 C in Oslo."))
    asked: Any = [{"role": "user", "content": "Weather in Oslo?"}]
    with client.responses.stream(model=OPENAI_MODEL, input=asked, tools=TOOLS) as stream:
        first = stream.get_final_response()
    reasoning, call = first.output
    assert reasoning.type == "reasoning" and call.type == "function_call"
    handed_back = [item.to_dict() for item in first.output]  # as Codex hands them back
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "3 C"}
    answer = client.responses.create(
        model=OPENAI_MODEL, input=[*asked, *handed_back, output], tools=TOOLS
    )
    assert answer.output_text == "3 C in Oslo."
    sent = fresh.openai_fake.requests[-1].body["messages"]
    assert sent[1]["role"] == "assistant" and sent[1]["tool_calls"][0]["id"] == "call_1"
    assert sent[1]["reasoning_content"] == THOUGHT
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Oslo"}


def test_reasoning_not_made_for_this_model_stays_off(fresh: ResponsesBox) -> None:
    """OpenAI's own reasoning items (ids of hex digits), and the box's made for another model,
    are not given to a chat upstream."""
    from codelace_box.providers.responses_input import chat_reasoning_id

    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="ok"), Reply(content="ok"))
    content = [{"type": "reasoning_text", "text": THOUGHT}]
    for item_id in ("rs_" + "ab" * 24, chat_reasoning_id("other/deepseek-v4")):
        reasoning = {"type": "reasoning", "id": item_id, "summary": [], "content": content}
        call = {"type": "function_call", "call_id": "c1", "name": "get_weather",
                "arguments": "{}"}  # fmt: skip
        output = {"type": "function_call_output", "call_id": "c1", "output": "3 C"}
        items: Any = [{"role": "user", "content": "Hi"}, reasoning, call, output]
        fresh.openai(key).responses.create(model=OPENAI_MODEL, input=items, tools=TOOLS)
        assert "reasoning_content" not in fresh.openai_fake.requests[-1].body["messages"][1]


def test_a_native_upstream_never_gets_the_boxs_chat_reasoning(fresh: ResponsesBox) -> None:
    """A thread moved to a --responses-api model: OpenAI keeps nothing (store false) and would
    look the box's reasoning id up and refuse the request; the item is left out."""
    from codelace_box.providers.responses_input import chat_reasoning_id

    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="ok"))
    content = [{"type": "reasoning_text", "text": THOUGHT}]
    reasoning = {"type": "reasoning", "id": chat_reasoning_id(OPENAI_MODEL), "summary": [],
                 "content": content}  # fmt: skip
    hello, bye = {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}
    items: Any = [{"role": "user", "content": "Hi"}, reasoning, hello, bye]
    fresh.openai(key).responses.create(model=NATIVE_MODEL, input=items)
    sent = fresh.openai_fake.requests[-1].body["input"]
    assert [item.get("type", "message") for item in sent] == ["message"] * 3
