"""/v1/messages to an `openai` provider with a tool name longer than OpenAI's 64 characters
(Anthropic takes 128; Claude Code's MCP tools are `mcp__<server>__<tool>`): the upstream gets a
short name wherever the tool is named, and the client gets its calls under the full name. The
streamed path is driven by the real Claude Code in test_claude_code_mcp.py."""

from __future__ import annotations

import json

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import NEEDS_SDK, OPENAI_ALIAS, MessagesBox

pytestmark = NEEDS_SDK

LONG = "mcp__github-enterprise__search_all_repository_pull_request_review_comment_threads"
SCHEMA = {"type": "object", "properties": {"author": {"type": "string"}}}
HISTORY = [
    {"role": "user", "content": "Find bob's threads"},
    {"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_1", "name": LONG, "input": {"author": "bob"}}]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "none"},
        {"type": "text", "text": "Now alice's"}]},
]  # fmt: skip


def test_a_long_tool_name_goes_short_and_comes_back_whole(fresh: MessagesBox) -> None:
    email, key = fresh.new_key()
    body = {"model": OPENAI_ALIAS, "max_tokens": 100, "messages": HISTORY,
            "tools": [{"name": LONG, "input_schema": SCHEMA}, {"name": "Read", "input_schema":
                      SCHEMA}], "tool_choice": {"type": "tool", "name": LONG}}  # fmt: skip
    sent = fresh.translated(key, body)
    (short,) = {t["function"]["name"] for t in sent["tools"]} - {"Read"}
    assert len(short) <= 64 and short.startswith("mcp__github-enterprise__search")
    assert sent["tool_choice"]["function"]["name"] == short
    assert sent["messages"][1]["tool_calls"][0]["function"]["name"] == short
    call = {"name": short, "arguments": json.dumps({"author": "alice"})}
    fresh.openai_fake.push(Reply(content="", tool_calls=[call]))
    answer = fresh.client(key).messages.create(**body)
    (use,) = [b for b in answer.content if b.type == "tool_use"]
    assert (use.name, use.input) == (LONG, {"author": "alice"})
    assert answer.stop_reason == "tool_use"
    assert [r["status"] for r in fresh.usage_rows(email)] == ["ok", "ok"]


def test_two_long_names_of_one_beginning_stay_apart_when_streamed(fresh: MessagesBox) -> None:
    """Two names alike in their first 55 characters get two upstream names; a streamed call of
    the second comes back under its own full name; a name of exactly 64 characters is sent as
    it is."""
    _, key = fresh.new_key()
    other, exact = LONG + "_by_reviewer", "x" * 64
    tools = [{"name": name, "input_schema": SCHEMA} for name in (LONG, other, exact)]
    body = {"model": OPENAI_ALIAS, "max_tokens": 100, "tools": tools,
            "messages": [{"role": "user", "content": "Find them"}]}  # fmt: skip
    sent = [t["function"]["name"] for t in fresh.translated(key, body)["tools"]]
    assert len(set(sent)) == 3 and sent[2] == exact and all(len(n) <= 64 for n in sent)
    call = {"name": sent[1], "arguments": json.dumps({"author": "carol"})}
    fresh.openai_fake.push(Reply(content="", tool_calls=[call]))
    with fresh.client(key).messages.stream(**body) as stream:
        answer = stream.get_final_message()
    assert [(b.type, getattr(b, "name", None)) for b in answer.content] == [("tool_use", other)]
