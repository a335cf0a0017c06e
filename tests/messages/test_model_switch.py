"""A conversation that moves from a model behind an `openai` provider to an Anthropic one (Claude
Code's /model): the first model's reasoning came back as thinking blocks without a signature,
which Anthropic refuses (400); the pass-through leaves those out, and keeps everything else."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import ALIAS, OPENAI_ALIAS, MessagesBox, openai_chunk, tool_call_piece
from tests.support import TLS

UNSIGNED = {"type": "thinking", "thinking": "DeepSeek's reasoning", "signature": ""}
SIGNED = {"type": "thinking", "thinking": "Claude's", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA"}


def text_block(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


HISTORY = [
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": [UNSIGNED, {"type": "text", "text": "Hello."}]},
    {"role": "user", "content": "think again"},
    {"role": "assistant", "content": [UNSIGNED]},  # cut while it reasoned
    {"role": "user", "content": "and now?"},
    {"role": "assistant", "content": [SIGNED, {"type": "text", "text": "Now."}]},
    {"role": "user", "content": "bye"},
]  # fmt: skip


def test_unsigned_thinking_is_left_out_for_an_anthropic_model(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    body = {"model": ALIAS, "max_tokens": 2048, "messages": HISTORY,
            "thinking": {"type": "enabled", "budget_tokens": 1024}}  # fmt: skip
    answer = _post(fresh, body, {"x-api-key": key})
    assert answer.status_code == 200, answer.text
    sent = fresh.fake.requests[-1].body["messages"]
    assert sent == [
        HISTORY[0],
        {"role": "assistant", "content": [{"type": "text", "text": "Hello."}]},
        # a turn of unsigned thinking alone: gone, the user turns around it one (as Anthropic
        # combines consecutive turns)
        {"role": "user", "content": [text_block("think again"), text_block("and now?")]},
        HISTORY[5],
        HISTORY[6],
    ]


def _one_tool_call_loop() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The openai model's turn that called a tool, begun with its unsigned reasoning, and the
    tool's result: the call and the history."""
    call = {"type": "tool_use", "id": "call_00_abc", "name": "Read", "input": {"path": "a"}}
    result = {"type": "tool_result", "tool_use_id": "call_00_abc", "content": "text of a"}
    history = [{"role": "user", "content": "read a"},
               {"role": "assistant", "content": [UNSIGNED, call]},
               {"role": "user", "content": [result]}]  # fmt: skip
    return call, history


def _post(fresh: MessagesBox, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
    """A Messages call to the box."""
    url = f"{fresh.server.base_url}/v1/messages"
    return httpx.post(url, json=body, headers=headers, timeout=30, verify=TLS)


def test_a_tool_loop_moved_to_claude_goes_on_without_thinking_that_call(fresh: MessagesBox) -> None:
    """The openai model's turn that called a tool began with its reasoning; left out, the turn
    Claude answers the tool result of no longer begins with thinking, which Anthropic requires
    with thinking on (400 "a final `assistant` message must start with a thinking block"):
    that call goes without thinking, as the chat translation's does; the next turn thinks."""
    _, key = fresh.new_key()
    call, history = _one_tool_call_loop()
    tools = [{"name": "Read", "input_schema": {"type": "object"}}]
    body = {"model": ALIAS, "max_tokens": 2048, "messages": history, "tools": tools,
            "thinking": {"type": "enabled", "budget_tokens": 1024}}  # fmt: skip
    answer = _post(fresh, body, {"x-api-key": key})
    assert answer.status_code == 200, answer.text
    sent = fresh.fake.requests[-1].body
    assert "thinking" not in sent and sent["messages"][1]["content"] == [call]
    history += [{"role": "assistant", "content": [text_block("a says: text")]},
                {"role": "user", "content": "thanks"}]  # fmt: skip
    answer = _post(fresh, body | {"messages": history}, {"x-api-key": key})
    assert answer.status_code == 200, answer.text
    assert fresh.fake.requests[-1].body["thinking"] == body["thinking"]


def test_the_whole_tool_loop_moved_to_claude_goes_without_thinking(fresh: MessagesBox) -> None:
    """A tool loop is one assistant turn, of one thinking configuration: Claude, asked without
    thinking at the first step after the switch, calls the next tool without a thinking block,
    and the step after that (thinking on again, the final assistant message Claude's own,
    which begins with its tool_use) would be refused as the first was: every step of the loop
    the openai model began goes without thinking; a loop Claude began with its thinking keeps
    it."""
    _, key = fresh.new_key()
    calls = [{"type": "tool_use", "id": f"call_0{n}_abc", "name": "Read", "input": {"path": n}}
             for n in "ab"]  # fmt: skip
    results = [{"type": "tool_result", "tool_use_id": c["id"], "content": "text"} for c in calls]
    history = [{"role": "user", "content": "read a and b"},
               {"role": "assistant", "content": [UNSIGNED, calls[0]]},
               {"role": "user", "content": [results[0]]},
               {"role": "assistant", "content": [text_block("Now b."), calls[1]]},
               {"role": "user", "content": [results[1]]}]  # fmt: skip
    body = {"model": ALIAS, "max_tokens": 2048, "messages": history,
            "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
            "thinking": {"type": "enabled", "budget_tokens": 1024}}  # fmt: skip
    answer = _post(fresh, body, {"x-api-key": key})
    assert answer.status_code == 200, answer.text
    assert "thinking" not in fresh.fake.requests[-1].body
    history[1] = {"role": "assistant", "content": [SIGNED, calls[0]]}
    answer = _post(fresh, body, {"x-api-key": key})
    assert answer.status_code == 400  # Claude's own loop, of a step without thinking: its 400
    assert "must start with a thinking block" in answer.text


def test_claude_codes_clear_thinking_edit_goes_with_thinking(fresh: MessagesBox) -> None:
    """Claude Code sends, with thinking on, a `clear_thinking_20251015` context edit, which
    Anthropic refuses without thinking (400 "`clear_thinking_20251015` strategy requires
    `thinking` to be enabled or adaptive"): the call the tool loop makes without thinking goes
    without that edit too, the others kept; a call with thinking keeps it."""
    _, key = fresh.new_key()
    call, history = _one_tool_call_loop()
    clear_tools = {"type": "clear_tool_uses_20250919"}
    edits = [{"type": "clear_thinking_20251015", "keep": "all"}, clear_tools]
    body = {"model": ALIAS, "max_tokens": 2048, "messages": history, "context_management":
            {"edits": edits}, "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
            "thinking": {"type": "adaptive"}}  # fmt: skip
    headers = {"x-api-key": key, "anthropic-beta": "context-management-2025-06-27"}
    answer = _post(fresh, body, headers)
    assert answer.status_code == 200, answer.text
    sent = fresh.fake.requests[-1].body
    assert "thinking" not in sent and sent["context_management"] == {"edits": [clear_tools]}
    only_thinking = body | {"context_management": {"edits": edits[:1]}}
    answer = _post(fresh, only_thinking, headers)
    assert answer.status_code == 200, answer.text
    assert "context_management" not in fresh.fake.requests[-1].body
    history[1] = {"role": "assistant", "content": [SIGNED, call]}
    answer = _post(fresh, body, headers)
    assert answer.status_code == 200, answer.text
    assert fresh.fake.requests[-1].body["context_management"] == {"edits": edits}


def test_the_same_history_still_reaches_an_openai_model(fresh: MessagesBox) -> None:
    """(The translation's own handling: see test_reasoning_roundtrip.py.)"""
    _, key = fresh.new_key()
    body = {"model": OPENAI_ALIAS, "max_tokens": 50, "messages": HISTORY}
    answer = _post(fresh, body, {"x-api-key": key})
    assert answer.status_code == 200, answer.text


def test_count_tokens_of_such_a_history_is_asked_without_them_too(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    body = {"model": ALIAS, "messages": HISTORY}
    answer = httpx.post(f"{fresh.server.base_url}/v1/messages/count_tokens", json=body,
                        headers={"x-api-key": key}, timeout=30, verify=TLS)  # fmt: skip
    assert answer.status_code == 200, answer.text
    sent = fresh.fake.requests[-1].body["messages"]
    assert not any(b.get("signature") == "" for m in sent if isinstance(m["content"], list)
                   for b in m["content"])  # fmt: skip


def test_count_tokens_of_a_moved_tool_loop_is_asked_without_thinking(fresh: MessagesBox) -> None:
    """Claude Code counts the tokens of each call it makes: the count of a tool loop an openai
    model began kept `thinking` (and Claude Code's clear_thinking edit), which Anthropic
    refuses as it refuses the call ("must start with a thinking block"), while the call
    itself went without. The count goes as the call does: the same decision, one place."""
    _, key = fresh.new_key()
    _, history = _one_tool_call_loop()
    clear_tools = {"type": "clear_tool_uses_20250919"}
    edits = [{"type": "clear_thinking_20251015", "keep": "all"}, clear_tools]
    body = {"model": ALIAS, "messages": history, "context_management": {"edits": edits},
            "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
            "thinking": {"type": "enabled", "budget_tokens": 1024}}  # fmt: skip
    headers = {"x-api-key": key, "anthropic-beta": "context-management-2025-06-27"}
    url = f"{fresh.server.base_url}/v1/messages/count_tokens"
    answer = httpx.post(url, json=body, headers=headers, timeout=30, verify=TLS)
    assert answer.status_code == 200, answer.text
    sent = fresh.fake.requests[-1].body
    assert "thinking" not in sent and sent["context_management"] == {"edits": [clear_tools]}
    history[1] = {"role": "assistant", "content": [SIGNED, history[1]["content"][1]]}
    answer = httpx.post(url, json=body, headers=headers, timeout=30, verify=TLS)
    assert answer.status_code == 200, answer.text  # Claude's own loop: counted with thinking
    assert fresh.fake.requests[-1].body["thinking"] == body["thinking"]


def test_tool_ids_another_server_made_reach_an_anthropic_model_in_its_pattern(
    fresh: MessagesBox,
) -> None:
    """Kimi K2 (Moonshot, vLLM, Groq) names its calls `functions.get_weather:0`; the translation
    hands that id to the client as the tool_use id, and after /model to a Claude model every
    turn of the conversation was Anthropic's 400 (tool_use.id: String should match pattern
    '^[a-zA-Z0-9_-]+$'). The pass-through maps such ids (the tool_use and its tool_result
    alike); the rest of the history goes as sent."""
    import anthropic

    _, key = fresh.new_key()
    kimi_call = {"id": "functions.get_weather:0", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}  # fmt: skip
    answer = {"id": "c1", "object": "chat.completion", "created": 1, "model": "kimi-k2",
              "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                  "role": "assistant", "content": None, "tool_calls": [kimi_call]}}],
              "usage": {"prompt_tokens": 9, "completion_tokens": 7}}  # fmt: skip
    fresh.openai_fake.push(
        Reply(raw=[json.dumps(answer).encode()], content_type="application/json")
    )
    tools = [{"name": "get_weather", "input_schema": {"type": "object",
              "properties": {"city": {"type": "string"}}}}]  # fmt: skip
    asked: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    client = fresh.client(key)
    first = client.messages.create(model=OPENAI_ALIAS, max_tokens=100, messages=asked, tools=tools)
    [call] = first.content
    assert call.type == "tool_use" and call.id == "functions.get_weather:0"
    asked += [{"role": "assistant", "content": [call.model_dump(exclude_none=True)]},
              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                            "content": "21 C"}]}]  # fmt: skip
    try:
        then = client.messages.create(model=ALIAS, max_tokens=100, messages=asked, tools=tools)
    except anthropic.BadRequestError as refused:
        raise AssertionError(f"the history was refused: {refused.message}") from None
    assert then.content[0].type == "text"
    sent = fresh.fake.requests[-1].body["messages"]
    used, result = sent[1]["content"][0], sent[2]["content"][0]
    assert used["id"] == result["tool_use_id"] and re.fullmatch(r"[a-zA-Z0-9_-]+", used["id"])
    assert sent[0] == asked[0] and used["input"] == {"city": "Paris"}
    counted = client.messages.count_tokens(model=ALIAS, messages=asked, tools=tools)
    assert counted.input_tokens > 0


@pytest.mark.parametrize("stream", [True, False])
def test_blank_text_before_a_tool_call_does_not_make_the_history_one_claude_refuses(
    fresh: MessagesBox, stream: bool
) -> None:
    """Qwen and DeepSeek servers often send "\\n\\n" as content before their tool calls; the
    translation made it a text block of its own, and after /model to a Claude model the history
    was Anthropic's 400 (text content blocks must contain non-whitespace text)."""
    _, key = fresh.new_key()
    usage = {"prompt_tokens": 5, "completion_tokens": 5}
    fresh.openai_fake.push(Reply(raw=[
        openai_chunk({"role": "assistant", "content": "\n"}), openai_chunk({"content": "\n"}),
        openai_chunk(tool_call_piece(0, "call_1", '{"file_path": "/a"}')),
        openai_chunk({}, "tool_calls"), openai_chunk({}, usage=usage),
        b"data: [DONE]\n\n"]))  # fmt: skip
    whole = {"id": "c1", "object": "chat.completion", "created": 1, "model": "qwen3",
             "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                 "role": "assistant", "content": "\n\n", "tool_calls": [{"id": "call_1",
                 "type": "function", "function": {"name": "Read",
                                                  "arguments": '{"file_path": "/a"}'}}]}}],
             "usage": usage}  # fmt: skip
    if not stream:
        fresh.openai_fake.reset()
        fresh.openai_fake.push(
            Reply(raw=[json.dumps(whole).encode()], content_type="application/json")
        )
    tools = [{"name": "Read", "input_schema": {"type": "object",
              "properties": {"file_path": {"type": "string"}}}}]  # fmt: skip
    asked: list[Any] = [{"role": "user", "content": "read /a"}]
    client = fresh.client(key)
    if stream:
        with client.messages.stream(model=OPENAI_ALIAS, max_tokens=100, messages=asked,
                                    tools=tools) as events:  # fmt: skip
            first = events.get_final_message()
    else:
        first = client.messages.create(
            model=OPENAI_ALIAS, max_tokens=100, messages=asked, tools=tools
        )
    assert [block.type for block in first.content] == ["tool_use"]
    said = [block.model_dump(exclude_none=True) for block in first.content]
    result = {"type": "tool_result", "tool_use_id": first.content[0].id, "content": "data"}
    asked += [{"role": "assistant", "content": said}, {"role": "user", "content": [result]}]
    then = client.messages.create(model=ALIAS, max_tokens=100, messages=asked, tools=tools)
    assert then.content[0].type == "text"


def test_blank_text_alone_is_still_the_answer(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="\n", pieces=["\n"]), Reply(content="\n", pieces=["\n"]))
    asked = [{"role": "user", "content": "say nothing"}]
    client = fresh.client(key)
    with client.messages.stream(model=OPENAI_ALIAS, max_tokens=100, messages=asked) as events:
        assert [(b.type, b.text) for b in events.get_final_message().content] == [("text", "\n")]
    whole = client.messages.create(model=OPENAI_ALIAS, max_tokens=100, messages=asked)
    assert [(b.type, b.text) for b in whole.content] == [("text", "\n")]  # type: ignore[union-attr]
