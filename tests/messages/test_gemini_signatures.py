"""Gemini 3 behind an `openai` provider: each function call carries a thought signature
(`extra_content.google.thought_signature`) that must come back with the call on the next turn,
or Gemini refuses it (400 "Function call is missing a thought_signature"). Through the Messages
API it rides in the tool_use id, which Claude Code hands back verbatim."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import NEEDS_SDK, OPENAI_ALIAS, MessagesBox, openai_chunk
from tests.messages.test_claude_code import CLAUDE, notes_home, run_claude

pytestmark = NEEDS_SDK

JSON = dict[str, Any]
SIGNATURE = "CiQBjz1rX+base64/signature=="  # opaque to the box: any characters
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
TOOLS = [{"name": "Read", "input_schema": {"type": "object"}}]


def gemini_call(call_id: str, arguments: str, signature: str | None = SIGNATURE) -> JSON:
    call: JSON = {"id": call_id, "type": "function", "index": 0,
                  "function": {"name": "Read", "arguments": arguments}}  # fmt: skip
    if signature is not None:
        call["extra_content"] = {"google": {"thought_signature": signature}}
    return call


def gemini_stream(arguments: str) -> Reply:
    """Gemini's OpenAI-compatible stream of one signed call (whole, in one chunk)."""
    return Reply(raw=[
        openai_chunk({"role": "assistant", "tool_calls": [gemini_call("fc-1", arguments)]}),
        openai_chunk({}, "tool_calls"), openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n",
    ])  # fmt: skip


def sent_back(box: MessagesBox) -> tuple[JSON, JSON]:
    """The assistant tool call and the tool message of the last request upstream."""
    messages = box.openai_fake.requests[-1].body["messages"]
    [turn] = [m for m in messages if m["role"] == "assistant"]
    [tool] = [m for m in messages if m["role"] == "tool"]
    return turn["tool_calls"][0], tool


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "answer"])
def test_a_signed_call_comes_back_with_its_signature(fresh: MessagesBox, stream: bool) -> None:
    _, key = fresh.new_key()
    client = fresh.client(key)
    asked = [{"role": "user", "content": "read a"}]
    if stream:
        fresh.openai_fake.push(gemini_stream('{"path": "a"}'))
        with client.messages.stream(model=OPENAI_ALIAS, max_tokens=100, tools=TOOLS,
                                    messages=asked) as streamed:  # fmt: skip
            first = streamed.get_final_message()
    else:
        completion = {"id": "c1", "object": "chat.completion", "created": 1, "model": "g",
                      "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                          "role": "assistant", "content": None,
                          "tool_calls": [gemini_call("fc-1", '{"path": "a"}')]}}],
                      "usage": USAGE}  # fmt: skip
        fresh.openai_fake.push(Reply(raw=[json.dumps(completion).encode()],
                                     content_type="application/json"))  # fmt: skip
        first = client.messages.create(model=OPENAI_ALIAS, max_tokens=100, tools=TOOLS,
                                       messages=asked)  # fmt: skip
    [use] = [b for b in first.content if b.type == "tool_use"]
    assert re.fullmatch(r"[A-Za-z0-9_-]+", use.id) and use.input == {"path": "a"}
    fresh.openai_fake.push(Reply(content="done"))
    result = {"type": "tool_result", "tool_use_id": use.id, "content": "a's text"}
    client.messages.create(model=OPENAI_ALIAS, max_tokens=100, tools=TOOLS, messages=[
        *asked, {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [result]}])  # fmt: skip
    call, tool = sent_back(fresh)
    assert call["id"] == "fc-1" and tool["tool_call_id"] == "fc-1"
    assert call["extra_content"] == {"google": {"thought_signature": SIGNATURE}}


def test_an_unsigned_call_keeps_its_id_as_it_is(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(tool_calls=[{"name": "Read", "arguments": "{}"}]))
    message = fresh.client(key).messages.create(
        model=OPENAI_ALIAS, max_tokens=100, tools=TOOLS, messages=[{"role": "user", "content": "x"}]
    )
    assert "__thought__" not in message.content[0].id


@pytest.mark.skipif(CLAUDE is None, reason="Claude Code is not installed")
def test_claude_codes_tool_loop_on_gemini(fresh: MessagesBox, tmp_path: Path) -> None:
    _, key = fresh.new_key()
    home, notes = notes_home(tmp_path)
    fresh.openai_fake.push(gemini_stream(json.dumps({"file_path": str(notes)})),
                           Reply(content="The word is pelican."))  # fmt: skip
    question = "What is the secret word in notes.txt?"
    auth = {"ANTHROPIC_AUTH_TOKEN": key}
    answer = run_claude(
        fresh, home, auth, question, "--model", OPENAI_ALIAS, "--allowedTools", "Read"
    )
    assert answer["result"] == "The word is pelican."
    call, tool = sent_back(fresh)
    assert call["extra_content"] == {"google": {"thought_signature": SIGNATURE}}
    assert call["id"] == tool["tool_call_id"] == "fc-1" and "pelican" in tool["content"]
