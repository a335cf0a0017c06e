"""Reasoning of an OpenAI-compatible upstream (DeepSeek's `reasoning_content`) through the
Messages API and back: in a tool loop DeepSeek's thinking mode refuses (400) the next turn
unless the reasoning of the assistant turn that called tools is sent back with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import (
    NEEDS_SDK,
    OPENAI_ALIAS,
    MessagesBox,
    openai_chunk,
    tool_call_piece,
)
from tests.messages.test_claude_code import CLAUDE, notes_home, run_claude

pytestmark = NEEDS_SDK

USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
TOOLS = [{"name": "Read", "description": "Read a file", "input_schema": {
    "type": "object", "properties": {"file_path": {"type": "string"}}}}]  # fmt: skip


def thinking_then_call(reasoning: str, arguments: str) -> Reply:
    """DeepSeek's stream: reasoning_content, then a Read call."""
    return Reply(raw=[
        openai_chunk({"role": "assistant", "content": None, "reasoning_content": reasoning}),
        openai_chunk(tool_call_piece(0, "call_1", arguments)),
        openai_chunk({}, "tool_calls"), openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n",
    ])  # fmt: skip


def assistant_turns(box: MessagesBox) -> list[dict[str, Any]]:
    """The assistant messages of the last request the OpenAI fake received."""
    return [m for m in box.openai_fake.requests[-1].body["messages"] if m["role"] == "assistant"]


def test_the_reasoning_of_a_tool_calling_turn_goes_back_upstream(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    client = fresh.client(key)
    fresh.openai_fake.push(thinking_then_call("I should read a.", '{"file_path": "a"}'))
    asked = [{"role": "user", "content": "read a"}]
    with client.messages.stream(model=OPENAI_ALIAS, max_tokens=100, tools=TOOLS,
                                messages=asked) as stream:  # fmt: skip
        first = stream.get_final_message()
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    fresh.openai_fake.push(Reply(content="It says hi."))
    result = {"type": "tool_result", "tool_use_id": "call_1", "content": "hi"}
    history = [*asked, {"role": "assistant", "content": [b.model_dump() for b in first.content]},
               {"role": "user", "content": [result]}]  # fmt: skip
    client.messages.create(model=OPENAI_ALIAS, max_tokens=100, tools=TOOLS, messages=history)
    [turn] = assistant_turns(fresh)
    assert turn["reasoning_content"] == "I should read a."
    assert turn["tool_calls"][0]["id"] == "call_1"


def test_signed_thinking_and_turns_without_tool_calls_send_no_reasoning(
    fresh: MessagesBox,
) -> None:
    """An Anthropic model's signed thinking is not the upstream's own; a turn that called no
    tool needs none (DeepSeek ignores it, others may refuse a field they do not know)."""
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="ok"))
    signed = {"type": "thinking", "thinking": "Claude's", "signature": "EqQBCkYIBxgCKkA"}
    plain = {"type": "thinking", "thinking": "no tools", "signature": ""}
    call = {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"file_path": "a"}}
    history = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [plain, {"type": "text", "text": "Hello."}]},
        {"role": "user", "content": "read a"},
        {"role": "assistant", "content": [signed, call]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": "hi"}]},
    ]  # fmt: skip
    fresh.client(key).messages.create(model=OPENAI_ALIAS, max_tokens=50, tools=TOOLS,
                                      messages=history)  # fmt: skip
    assert all("reasoning_content" not in turn for turn in assistant_turns(fresh))


@pytest.mark.skipif(CLAUDE is None, reason="Claude Code is not installed")
def test_claude_codes_tool_loop_on_a_reasoning_model(fresh: MessagesBox, tmp_path: Path) -> None:
    """Claude Code's own Read tool on a DeepSeek-like model: the second turn carries the first
    turn's reasoning back (DeepSeek would refuse it otherwise)."""
    _, key = fresh.new_key()
    home, notes = notes_home(tmp_path)
    arguments = json.dumps({"file_path": str(notes)})
    fresh.openai_fake.push(thinking_then_call("Read notes.txt first.", arguments),
                           Reply(content="The word is pelican."))  # fmt: skip
    question = "What is the secret word in notes.txt?"
    auth = {"ANTHROPIC_AUTH_TOKEN": key}
    answer = run_claude(
        fresh, home, auth, question, "--model", OPENAI_ALIAS, "--allowedTools", "Read"
    )
    assert answer["result"] == "The word is pelican."
    calling = [t for t in assistant_turns(fresh) if t.get("tool_calls")]
    assert calling and calling[-1].get("reasoning_content") == "Read notes.txt first."
    assert notes.exists()


def test_openais_own_api_is_sent_no_reasoning_content() -> None:
    """api.openai.com reasons in private and takes no such field: it is left out there."""
    from codelace_box.providers.base import UpstreamTarget
    from codelace_box.providers.messages_openai import MessagesToOpenAI

    thinking = {"type": "thinking", "thinking": "DeepSeek's", "signature": ""}
    call = {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1"}
    body = {"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": "x"}, {"role": "assistant", "content": [thinking, call]},
        {"role": "user", "content": [result]}]}  # fmt: skip
    sent = {}
    for base in ("https://api.openai.com/v1", "https://api.deepseek.com"):
        target = UpstreamTarget("m", "sk-x", base, False, None)
        sent[base] = MessagesToOpenAI().build_request(body, target).json_body["messages"][1]
    assert "reasoning_content" not in sent["https://api.openai.com/v1"]
    assert sent["https://api.deepseek.com"]["reasoning_content"] == "DeepSeek's"
