"""Mid-conversation tool changes of a Messages request, for an `openai` provider (pure code).

Under Anthropic's beta `mid-conversation-tool-changes-2026-07-01` a conversation keeps the
`tools` it began with and says later changes in a mid-conversation system message (past a
compaction, in its `compaction` block's `tool_changes` too): `tool_addition` of a
`tool_definition` (a tool that arrived late, such as Claude Code's tools of an MCP server that
connected after the first prompt) or of a `tool_reference` (a tool of `tools`, deferred, shown
from then on), and `tool_removal` of a `tool_reference`. A Chat Completions server has only
`tools`: it is offered the request's tools as those changes left them, in order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
ADDITION, REMOVAL = "tool_addition", "tool_removal"
DEFINITION = "tool_definition"


@dataclass
class ToolChanges:
    """What a conversation's changes left: tools added by definition (by name, in order),
    deferred tools of `tools` shown by reference, and tools removed."""

    added: dict[str, JSON] = field(default_factory=dict)
    shown: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)

    def apply(self, block: JSON) -> None:
        """One `tool_addition` or `tool_removal` block, after those before it."""
        raw = block.get("tool")
        tool: JSON = raw if isinstance(raw, dict) else {}
        defined = tool.get("definition") if tool.get("type") == DEFINITION else None
        name = defined.get("name") if isinstance(defined, dict) else tool.get("name")
        if not isinstance(name, str):
            return
        self.added.pop(name, None)
        if block.get("type") == REMOVAL:
            self.shown.discard(name)
            self.removed.add(name)
            return
        self.removed.discard(name)
        if isinstance(defined, dict):
            self.added[name] = defined
        else:
            self.shown.add(name)


def change_blocks(messages: Any) -> Iterator[JSON]:
    """The tool change blocks of the conversation, in order (only system and assistant
    messages' blocks are looked at)."""
    for message in messages if isinstance(messages, list) else []:
        role = message.get("role") if isinstance(message, dict) else None
        content = message.get("content") if role in ("system", "assistant") else None
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict):
                continue
            if role == "system" and block.get("type") in (ADDITION, REMOVAL):
                yield block
            elif role == "assistant" and block.get("type") == "compaction":
                changes = block.get("tool_changes")
                yield from (
                    (c for c in changes if isinstance(c, dict)) if isinstance(changes, list) else ()
                )


def defined_tools(messages: Any) -> Iterator[JSON]:
    """The tools the conversation's changes define inline (`tool_addition` of a
    `tool_definition`), in order."""
    for block in change_blocks(messages):
        tool = block.get("tool")
        if (
            block.get("type") == ADDITION
            and isinstance(tool, dict)
            and tool.get("type") == DEFINITION
        ):
            definition = tool.get("definition")
            if isinstance(definition, dict):
                yield definition


def tool_changes(messages: Any) -> ToolChanges:
    """What the conversation's tool changes left (nothing for one without)."""
    changes = ToolChanges()
    for block in change_blocks(messages):
        changes.apply(block)
    return changes


def changed_tools(tools: Any, changes: ToolChanges) -> list[Any]:
    """The request's tools less the removed and redefined ones, then the added ones."""
    gone = changes.removed | changes.added.keys()
    listed = tools if isinstance(tools, list) else []
    kept = [t for t in listed if not (isinstance(t, dict) and named_in(t.get("name"), gone))]
    return [*kept, *changes.added.values()]


def named_in(name: Any, names: set[str]) -> bool:
    """Whether a tool's name is one of `names` (a name that is no text is none of them)."""
    return isinstance(name, str) and name in names
