"""Mid-conversation tool changes toward an `openai` provider. Under Anthropic's beta
`mid-conversation-tool-changes-2026-07-01` (which Claude Code 2.1.332 sends on every request) a
conversation keeps its `tools` and says later changes in a mid-conversation system message:
`tool_addition` of a `tool_definition` (Claude Code's late MCP tools, inline) or of a
`tool_reference` (a tool declared in `tools`, deferred, shown from then on), and `tool_removal`
of a `tool_reference`. A Chat Completions server has only `tools`: it is offered the request's
tools as those messages changed them, in order. The blocks were dropped with the rest of the
message's non-text, so the model was never offered a tool the client had added (and still a
removed one)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.messages.conftest import OPENAI_MODEL, MessagesBox

BASH = {
    "name": "Bash",
    "description": "Run a command",
    "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}},
}
LATE = {
    "name": "mcp__late__lookup",
    "description": "Look a word up",
    "input_schema": {"type": "object", "properties": {"word": {"type": "string"}}},
}
DEFERRED = {
    "name": "mcp__late__define",
    "description": "Define a word",
    "defer_loading": True,
    "input_schema": {"type": "object", "properties": {"word": {"type": "string"}}},
}


def addition(tool: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_addition", "tool": {"type": "tool_definition", "definition": tool}}


def by_reference(kind: str, name: str) -> dict[str, Any]:
    return {"type": kind, "tool": {"type": "tool_reference", "name": name}}


def offered(box: MessagesBox, *changes: list[dict[str, Any]]) -> tuple[list[str], Any]:
    """The names of the tools a chat upstream is offered for a conversation whose system
    messages (after its first exchange) say these changes; and the chat messages."""
    _, key = box.new_key()
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello."},
    ]
    for blocks in changes:
        text = {"type": "text", "text": "The tools changed."}
        messages += [
            {"role": "system", "content": [text, *blocks]},
            {"role": "user", "content": "go on"},
            {"role": "assistant", "content": "Ok."},
        ]
    body = {
        "model": OPENAI_MODEL,
        "max_tokens": 64,
        "tools": [BASH, DEFERRED],
        "messages": [*messages[:-1]],
    }
    sent = box.translated(key, body)
    return [t["function"]["name"] for t in sent.get("tools") or []], sent["messages"]


@pytest.mark.parametrize(
    ("changes", "names"),
    [
        ([[addition(LATE)]], ["Bash", LATE["name"]]),
        ([[by_reference("tool_addition", DEFERRED["name"])]], ["Bash", DEFERRED["name"]]),
        ([[by_reference("tool_removal", "Bash")]], []),
        ([[addition(LATE)], [by_reference("tool_removal", LATE["name"])]], ["Bash"]),
        (
            [[by_reference("tool_removal", "Bash")], [by_reference("tool_addition", "Bash")]],
            ["Bash"],
        ),
        (
            [
                [
                    by_reference("tool_addition", DEFERRED["name"]),
                    addition(LATE),
                    by_reference("tool_removal", "Bash"),
                ]
            ],
            [DEFERRED["name"], LATE["name"]],
        ),
    ],
)
def test_the_tools_offered_are_the_requests_as_the_conversation_changed_them(
    fresh: MessagesBox, changes: list[list[dict[str, Any]]], names: list[str]
) -> None:
    got, messages = offered(fresh, *changes)
    assert got == names
    said = [m["content"] for m in messages if m["role"] == "system"]
    assert said == ["The tools changed."] * len(changes)  # the message's words stay


def test_an_added_tool_is_offered_as_the_requests_own_are(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    body = {
        "model": OPENAI_MODEL,
        "max_tokens": 64,
        "tools": [BASH],
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "system", "content": [addition(LATE)]},
            {"role": "user", "content": "look"},
        ],
    }
    sent = fresh.translated(key, body)
    late = sent["tools"][1]
    assert late == {
        "type": "function",
        "function": {
            "name": LATE["name"],
            "parameters": LATE["input_schema"],
            "description": LATE["description"],
        },
    }


def test_changes_carried_through_a_compaction_still_hold(fresh: MessagesBox) -> None:
    """Past Anthropic's server-side compaction the changes ride in its `compaction` block."""
    _, key = fresh.new_key()
    compacted = {
        "type": "compaction",
        "content": "We looked words up.",
        "tool_changes": [addition(LATE), by_reference("tool_removal", "Bash")],
    }
    body = {
        "model": OPENAI_MODEL,
        "max_tokens": 64,
        "tools": [BASH],
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [compacted]},
            {"role": "user", "content": "look"},
        ],
    }
    sent = fresh.translated(key, body)
    assert [t["function"]["name"] for t in sent["tools"]] == [LATE["name"]]
