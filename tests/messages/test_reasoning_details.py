"""OpenRouter's `reasoning_details` (Claude's signed thinking, Gemini's thought signatures) go
back to the model that wrote them on a tool loop's next turn, as OpenRouter asks: a chat client
hands them back itself and the box passes them through; through the Messages API they ride in
the thinking block's signature, which Claude Code returns untouched. An Anthropic model (after
/model) or another model never sees them."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from codelace_box.providers.messages_openai import chat_body
from codelace_box.providers.reasoning_details import PREFIX, model_tag, seal
from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import (
    ALIAS,
    OPENAI_ALIAS,
    OPENAI_MODEL,
    MessagesBox,
    openai_chunk,
)
from tests.messages.test_claude_code import CLAUDE, notes_home, run_claude
from tests.support import TLS

JSON = dict[str, Any]
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
TOOLS = [{"name": "Read", "input_schema": {"type": "object"}}]
CLAUDE_FORMAT = "anthropic-claude-v1"
CALL = {"index": 0, "id": "toolu_1", "type": "function",
        "function": {"name": "Read", "arguments": '{"path": "a"}'}}  # fmt: skip


def _text(text: str = "", **more: Any) -> JSON:
    return {"type": "reasoning.text", "text": text, "format": CLAUDE_FORMAT, "index": 0, **more}


# Claude through OpenRouter, streamed: the text in pieces, the signature last; then a detail
# that comes only after the call began (it must not cut the tool_use block).
CLAUDE_STREAM = [
    {"role": "assistant", "content": "", "reasoning": "I should ",
     "reasoning_details": [_text("I should ")]},
    {"reasoning": "read a.", "reasoning_details": [_text("read a.")]},
    {"reasoning_details": [{"type": "reasoning.text", "signature": "ErUBsig==",
                            "format": CLAUDE_FORMAT, "index": 0}]},
    {"tool_calls": [CALL]},
    {"reasoning_details": [{"type": "reasoning.encrypted", "data": "late==",
                            "format": CLAUDE_FORMAT, "index": 1}]},
]  # fmt: skip
CLAUDE_DETAILS = [
    _text("I should read a.", signature="ErUBsig=="),
    {"type": "reasoning.encrypted", "data": "late==", "format": CLAUDE_FORMAT, "index": 1},
]
# Gemini 3 through OpenRouter, not streamed: no reasoning text, a thought signature for the call.
GEMINI_DETAILS = [{"type": "reasoning.encrypted", "data": "CiQBsignature", "id": "toolu_1",
                   "format": "google-gemini-v1", "index": 0}]  # fmt: skip


def _stream_reply() -> Reply:
    frames = [openai_chunk(delta) for delta in CLAUDE_STREAM]
    frames += [openai_chunk({}, "tool_calls"), openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n"]
    return Reply(raw=frames)


def _gemini_reply() -> Reply:
    message = {"role": "assistant", "content": None, "tool_calls": [CALL],
               "reasoning": None, "reasoning_details": GEMINI_DETAILS}  # fmt: skip
    completion = {"id": "c1", "object": "chat.completion", "created": 1, "model": "g",
                  "choices": [{"index": 0, "finish_reason": "tool_calls", "message": message}],
                  "usage": USAGE}  # fmt: skip
    return Reply(raw=[json.dumps(completion).encode()], content_type="application/json")


def _next_turn(box: MessagesBox, key: str, content: list[JSON]) -> JSON:
    """Claude Code's next turn: the answer handed back, a tool result; what went upstream."""
    box.openai_fake.push(Reply(content="done"))
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a's text"}
    box.client(key).messages.create(model=OPENAI_ALIAS, max_tokens=2000, tools=TOOLS, messages=[
        {"role": "user", "content": "read a"}, {"role": "assistant", "content": content},
        {"role": "user", "content": [result]}])  # fmt: skip
    [turn] = [m for m in box.openai_fake.requests[-1].body["messages"] if m["role"] == "assistant"]
    return turn


def test_streamed_details_come_back_whole_with_the_call(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(_stream_reply())
    with fresh.client(key).messages.stream(model=OPENAI_ALIAS, max_tokens=2000, tools=TOOLS,
                                           messages=[{"role": "user", "content": "read a"}]
                                           ) as stream:  # fmt: skip
        answer = stream.get_final_message()
    kinds = [block.type for block in answer.content]
    assert kinds == ["thinking", "tool_use", "thinking"]
    assert answer.content[0].thinking == "I should read a."
    assert answer.content[1].input == {"path": "a"}
    turn = _next_turn(fresh, key, [block.model_dump() for block in answer.content])
    assert turn["reasoning_details"] == CLAUDE_DETAILS
    assert turn["tool_calls"][0]["id"] == "toolu_1"


def test_an_answers_details_come_back_with_the_call(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(_gemini_reply())
    answer = fresh.client(key).messages.create(
        model=OPENAI_ALIAS,
        max_tokens=2000,
        tools=TOOLS,
        messages=[{"role": "user", "content": "read a"}],
    )
    assert [block.type for block in answer.content] == ["thinking", "tool_use"]
    assert answer.content[0].thinking == ""  # nothing to show, only the signature to keep
    turn = _next_turn(fresh, key, [block.model_dump() for block in answer.content])
    assert turn["reasoning_details"] == GEMINI_DETAILS


def test_another_model_never_gets_them() -> None:
    block = {"type": "thinking", "thinking": "x", "signature": seal(GEMINI_DETAILS, OPENAI_MODEL)}
    body = {"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": "read a"}, {"role": "assistant", "content": [block]},
        {"role": "user", "content": "again"}]}  # fmt: skip
    assert chat_body(body, 10, OPENAI_MODEL)["messages"][1]["reasoning_details"] == GEMINI_DETAILS
    assert "reasoning_details" not in chat_body(body, 10, "oai/another")["messages"][1]


def test_an_anthropic_model_after_model_switch_never_gets_them(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    sealed = {"type": "thinking", "thinking": "x", "signature": seal(GEMINI_DETAILS, OPENAI_MODEL)}
    messages = [{"role": "user", "content": "hi"},
                {"role": "assistant", "content": [sealed, {"type": "text", "text": "Hello."}]},
                {"role": "user", "content": "bye"}]  # fmt: skip
    fresh.client(key).messages.create(model=ALIAS, max_tokens=2048, messages=messages)
    sent = fresh.fake.requests[-1].body["messages"]
    assert sent[1] == {"role": "assistant", "content": [{"type": "text", "text": "Hello."}]}


def test_a_chat_client_hands_them_back_itself(fresh: MessagesBox) -> None:
    """/v1/chat/completions: the details of the stream reach the client, and the assistant
    message it sends back reaches the upstream unchanged."""
    _, key = fresh.new_key()
    fresh.openai_fake.push(_stream_reply(), Reply(content="done"))
    asked = [{"role": "user", "content": "read a"}]
    headers = {"authorization": f"Bearer {key}"}
    url = f"{fresh.server.base_url}/v1/chat/completions"
    body = {"model": OPENAI_MODEL, "messages": asked, "stream": True}
    with httpx.stream("POST", url, json=body, headers=headers, timeout=30, verify=TLS) as answer:
        lines = [line[6:] for line in answer.iter_lines() if line.startswith("data: {")]
    chunks = [json.loads(line) for line in lines]
    pieces = [d for c in chunks for ch in c["choices"] for d in ch["delta"].get(
        "reasoning_details") or ()]  # fmt: skip
    assert pieces == [d for delta in CLAUDE_STREAM for d in delta.get("reasoning_details", ())]
    turn = {"role": "assistant", "content": None, "tool_calls": [CALL],
            "reasoning_details": CLAUDE_DETAILS}  # fmt: skip
    tool = {"role": "tool", "tool_call_id": "toolu_1", "content": "a's text"}
    body = {"model": OPENAI_MODEL, "messages": [*asked, turn, tool]}
    assert httpx.post(url, json=body, headers=headers, timeout=30, verify=TLS).status_code == 200
    assert fresh.openai_fake.requests[-1].body["messages"][1] == turn


@pytest.mark.skipif(CLAUDE is None, reason="Claude Code is not installed")
def test_claude_code_hands_them_back(fresh: MessagesBox, tmp_path: Path) -> None:
    """The real Claude Code keeps the sealed blocks of a streamed answer in its tool loop."""
    _, key = fresh.new_key()
    home, notes = notes_home(tmp_path)
    arguments = json.dumps({"file_path": str(notes)})
    call = {**CALL, "function": {"name": "Read", "arguments": arguments}}
    deltas = [*CLAUDE_STREAM[:3], {"tool_calls": [call]}, CLAUDE_STREAM[4]]
    frames = [openai_chunk(delta) for delta in deltas]
    frames += [openai_chunk({}, "tool_calls"), openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n"]
    fresh.openai_fake.push(Reply(raw=frames), Reply(content="The word is pelican."))
    answer = run_claude(fresh, home, {"ANTHROPIC_AUTH_TOKEN": key},
                        "What is the secret word in notes.txt?", "--model", OPENAI_ALIAS,
                        "--allowedTools", "Read")  # fmt: skip
    assert answer["result"] == "The word is pelican."
    [turn] = [m for m in fresh.openai_fake.requests[-1].body["messages"]
              if m["role"] == "assistant"]  # fmt: skip
    assert turn["reasoning_details"] == CLAUDE_DETAILS


def test_streamed_pieces_merge_by_index_and_type() -> None:
    from codelace_box.providers.reasoning_details import merge

    pieces = [
        {"type": "reasoning.summary", "summary": "Plan", "index": 0},
        {"type": "reasoning.summary", "summary": " it.", "index": 0, "id": None},
        {"type": "reasoning.encrypted", "data": "", "index": 0},  # no data: OpenRouter refuses it
        {"type": "reasoning.text", "text": "a", "index": 1},
        {"type": "reasoning.text", "text": "b", "signature": "s1", "index": 1},
    ]
    assert merge(pieces) == [
        {"type": "reasoning.summary", "summary": "Plan it.", "index": 0},
        {"type": "reasoning.text", "text": "ab", "signature": "s1", "index": 1},
    ]


def _forged(raw: bytes) -> str:
    """A signature in the sealed form for the called model, around bytes a user chose (the
    model's tag is no secret: anyone can write one)."""
    return f"{PREFIX}{model_tag(OPENAI_MODEL)}:{base64.urlsafe_b64encode(raw).decode()}"


@pytest.mark.parametrize(
    "signature",
    [_forged(b"[" * 100_000), _forged(b"\xff\xfe junk"), f"{PREFIX}{model_tag(OPENAI_MODEL)}:!!"],
    ids=["nested-past-the-recursion-limit", "not-utf8", "not-base64"],
)
def test_a_forged_signature_is_dropped_not_a_crash(fresh: MessagesBox, signature: str) -> None:
    """A thinking block handed back with a signature in the sealed form that carries no
    details (JSON nested deeper than Python's recursion limit made a 500 before any upstream
    call): the turn goes up without details and is answered and charged as any other."""
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="done"))
    thinking = {"type": "thinking", "thinking": "x", "signature": signature}
    body = {"model": OPENAI_ALIAS, "max_tokens": 10, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [thinking, {"type": "text", "text": "Hello."}]},
        {"role": "user", "content": "again"}]}  # fmt: skip
    answer = httpx.post(f"{fresh.server.base_url}/v1/messages", json=body,
                        headers={"x-api-key": key}, timeout=30, verify=TLS)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["content"] == [{"type": "text", "text": "done"}]
    [turn] = [m for m in fresh.openai_fake.requests[-1].body["messages"]
              if m["role"] == "assistant"]  # fmt: skip
    assert "reasoning_details" not in turn
