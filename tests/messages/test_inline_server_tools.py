"""Tools defined inline in a conversation (Anthropic's betas `inline-tools-2026-09-15` and
`mid-conversation-tool-changes-2026-07-01`, both sent by Claude Code 2.1.332): a mid-conversation
system message's `tool_addition` of a `tool_definition`, or a `compaction` block's
`tool_changes`, adds a tool as `tools` does. A server tool added so (web search, billed per
search; the advisor, another model at its rates) went to an `anthropic` provider unrefused: the
billed-field check read `tools` and `tool_choice` only. A plain tool defined inline passes as
sent."""

from __future__ import annotations

from typing import Any

import pytest

from tests.messages.conftest import MODEL, NEEDS_SDK, MessagesBox
from tests.messages.test_passthrough import post

pytestmark = NEEDS_SDK

BETAS = {"anthropic-beta": "mid-conversation-tool-changes-2026-07-01,inline-tools-2026-09-15"}
SEARCH = {"type": "web_search_20250305", "name": "web_search"}
ADVISOR = {"type": "advisor_20260301", "name": "advisor", "model": "claude-opus-4-6"}
LOOKUP = {"name": "lookup", "input_schema": {"type": "object", "properties": {}}}


def addition(tool: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_addition", "tool": {"type": "tool_definition", "definition": tool}}


def in_system(tool: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "system", "content": [addition(tool)]},
        {"role": "user", "content": "look it up"},
    ]


def in_compaction(tool: dict[str, Any]) -> list[dict[str, Any]]:
    block = {"type": "compaction", "content": "We talked.", "tool_changes": [addition(tool)]}
    return [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [block]},
        {"role": "user", "content": "look it up"},
    ]


@pytest.mark.parametrize(("tool", "field"), [(SEARCH, "web_search"), (ADVISOR, "advisor")])
@pytest.mark.parametrize("where", [in_system, in_compaction])
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_a_server_tool_defined_inline_needs_the_operators_permission(
    fresh: MessagesBox, tool: dict[str, Any], field: str, where: Any, path: str
) -> None:
    _, key = fresh.new_key()
    body = {"model": MODEL, "max_tokens": 10, "messages": where(tool)}
    answer = post(fresh, key, body, path, **BETAS)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert field in answer.json()["error"]["message"]
    assert fresh.fake.requests == []


def test_a_plain_tool_defined_inline_goes_as_sent(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    body = {"model": MODEL, "max_tokens": 10, "messages": in_system(LOOKUP)}
    answer = post(fresh, key, body, **BETAS)
    assert answer.status_code == 200, answer.text
    (sent,) = fresh.fake.requests
    assert sent.body["messages"] == body["messages"]
    assert sent.headers["anthropic-beta"] == BETAS["anthropic-beta"]
