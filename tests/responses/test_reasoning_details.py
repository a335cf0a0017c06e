"""OpenRouter's `reasoning_details` through /v1/responses (Codex on Claude or Gemini behind an
`openai` provider): the box seals them in the reasoning item's `encrypted_content`, Codex hands
the items back, and the assistant turn of the next request carries them again, to that model
only. Details that come while a tool call streams follow it in a reasoning item of their own,
which still belongs to that turn."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codelace_box.providers.reasoning_details import seal
from codelace_box.providers.responses_input import input_messages
from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import openai_chunk
from tests.messages.test_reasoning_details import (
    CALL,
    CLAUDE_DETAILS,
    CLAUDE_STREAM,
    GEMINI_DETAILS,
    USAGE,
    _gemini_reply,
)
from tests.responses.conftest import OPENAI_MODEL, ResponsesBox
from tests.responses.test_codex import CODEX, codex_exec

TOOLS: Any = [{"type": "function", "name": "Read", "parameters": {"type": "object"}}]
ASKED: Any = [{"role": "user", "content": "read a"}]
INCLUDE: Any = ["reasoning.encrypted_content"]


def _stream_reply() -> Reply:
    frames = [openai_chunk(delta) for delta in CLAUDE_STREAM]
    frames += [openai_chunk({}, "tool_calls"), openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n"]
    return Reply(raw=frames)


def _next_turn(box: ResponsesBox, key: str, output: list[Any]) -> dict[str, Any]:
    """Codex's next request: every output item handed back, the call's output; the assistant
    turn that went upstream."""
    box.openai_fake.push(Reply(content="done"))
    handed_back = [item.to_dict() for item in output]
    result = {"type": "function_call_output", "call_id": "toolu_1", "output": "a's text"}
    box.openai(key).responses.create(model=OPENAI_MODEL, input=[*ASKED, *handed_back, result],
                                     tools=TOOLS, include=INCLUDE)  # fmt: skip
    [turn] = [m for m in box.openai_fake.requests[-1].body["messages"] if m["role"] == "assistant"]
    return turn


def test_streamed_details_come_back_with_the_call(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(_stream_reply())
    with fresh.openai(key).responses.stream(model=OPENAI_MODEL, input=ASKED, tools=TOOLS,
                                            include=INCLUDE) as stream:  # fmt: skip
        first = stream.get_final_response()
    assert [item.type for item in first.output] == ["reasoning", "function_call", "reasoning"]
    assert first.output[0].content[0].text == "I should read a."
    turn = _next_turn(fresh, key, first.output)
    assert turn["reasoning_details"] == CLAUDE_DETAILS
    assert turn["tool_calls"][0]["id"] == "toolu_1"


def test_an_answers_details_come_back_with_the_call(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(_gemini_reply())
    first = fresh.openai(key).responses.create(model=OPENAI_MODEL, input=ASKED, tools=TOOLS,
                                               include=INCLUDE)  # fmt: skip
    assert [item.type for item in first.output] == ["reasoning", "function_call"]
    turn = _next_turn(fresh, key, first.output)
    assert turn["reasoning_details"] == GEMINI_DETAILS


def test_another_model_never_gets_them() -> None:
    item = {"type": "reasoning", "id": "rs_1", "summary": [],
            "encrypted_content": seal(GEMINI_DETAILS, OPENAI_MODEL)}  # fmt: skip
    call = {"type": "function_call", "call_id": "toolu_1", "name": "Read", "arguments": "{}"}
    items = [*ASKED, item, call, {"type": "function_call_output", "call_id": "toolu_1",
                                  "output": "x"}]  # fmt: skip
    assert input_messages(items, model=OPENAI_MODEL)[1]["reasoning_details"] == GEMINI_DETAILS
    assert "reasoning_details" not in input_messages(items, model="oai/another")[1]
    assert CALL["id"] == "toolu_1"


def test_the_real_codex_hands_them_back(fresh: ResponsesBox, tmp_path: Path) -> None:
    """Codex CLI keeps the sealed reasoning items (both) in its tool loop."""
    if CODEX is None:
        pytest.skip("Codex is not installed")
    _, key = fresh.new_key()
    arguments = json.dumps({"cmd": "echo box-tool-loop"})
    call = {**CALL, "function": {"name": "exec_command", "arguments": arguments}}
    deltas = [*CLAUDE_STREAM[:3], {"tool_calls": [call]}, CLAUDE_STREAM[4]]
    frames = [openai_chunk(delta) for delta in deltas]
    frames += [openai_chunk({}, "tool_calls"), openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n"]
    fresh.openai_fake.push(Reply(raw=frames), Reply(content="Echoed."))
    done = codex_exec(fresh, tmp_path, key, "Run echo.")
    assert done.returncode == 0, done.stderr[-2000:]
    chats = [r.body for r in fresh.openai_fake.requests if r.path == "/v1/chat/completions"]
    (turn,) = [m for m in chats[-1]["messages"] if m.get("tool_calls")]
    assert turn["reasoning_details"] == CLAUDE_DETAILS


def test_without_encrypted_content_asked_no_empty_reasoning_item(fresh: ResponsesBox) -> None:
    """Details alone make no reasoning item when the client did not ask for encrypted_content
    (there would be nothing in it), streamed or not."""
    _, key = fresh.new_key()
    deltas = [{"role": "assistant", "reasoning_details": GEMINI_DETAILS}, {"tool_calls": [CALL]}]
    frames = [openai_chunk(delta) for delta in deltas]
    frames += [openai_chunk({}, "tool_calls"), openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n"]
    fresh.openai_fake.push(Reply(raw=frames), _gemini_reply())
    client = fresh.openai(key)
    with client.responses.stream(model=OPENAI_MODEL, input=ASKED, tools=TOOLS) as stream:
        assert [item.type for item in stream.get_final_response().output] == ["function_call"]
    answer = client.responses.create(model=OPENAI_MODEL, input=ASKED, tools=TOOLS)
    assert [item.type for item in answer.output] == ["function_call"]


LATE = [{"type": "reasoning.encrypted", "data": "late==", "format": "anthropic-claude-v1",
         "index": 1}]  # fmt: skip


def test_details_that_come_during_the_text_leave_it_one_message_and_stay_with_it(
    fresh: ResponsesBox,
) -> None:
    """A detail that comes while the answer's text streams (as one comes late while a call
    streams) follows the message, which stays whole; handed back, it goes with that turn (not
    with a later one, nor nowhere)."""
    _, key = fresh.new_key()
    deltas = [{"role": "assistant", "content": "Hello"},
              {"content": " there", "reasoning_details": LATE},
              {"content": " friend."}]  # fmt: skip
    frames = [openai_chunk(delta) for delta in deltas]
    frames += [openai_chunk({}, "stop"), openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n"]
    fresh.openai_fake.push(Reply(raw=frames), Reply(content="Bye."))
    client = fresh.openai(key)
    with client.responses.stream(model=OPENAI_MODEL, input=ASKED, include=INCLUDE) as stream:
        first = stream.get_final_response()
    assert [item.type for item in first.output] == ["message", "reasoning"]
    assert first.output_text == "Hello there friend."
    handed_back = [item.to_dict() for item in first.output]
    again: Any = [*ASKED, *handed_back, {"role": "user", "content": "thanks"}]
    client.responses.create(model=OPENAI_MODEL, input=again, include=INCLUDE)
    sent = fresh.openai_fake.requests[-1].body["messages"]
    [turn] = [message for message in sent if message["role"] == "assistant"]
    assert turn == {"role": "assistant", "content": "Hello there friend.",
                    "reasoning_details": LATE}  # fmt: skip
