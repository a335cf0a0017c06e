"""A conversation Anthropic compacted, as its summary and what followed it (pure code).

Anthropic's server-side compaction (`context_management` edit `compact_20260112`) answers with a
`compaction` block, `{"type": "compaction", "content": "<summary>"}`, in an assistant turn; sent
back, it stands for everything before it: Anthropic drops the blocks ahead of it, so a client
may keep the whole history or only what follows. Translated for another model, the history
starts from the last such block, its summary as the turn's first text.
"""

from __future__ import annotations

from typing import Any

COMPACTION = "compaction"


def _summary(block: Any) -> str | None:
    """The summary of a compaction block that has one."""
    if not isinstance(block, dict) or block.get("type") != COMPACTION:
        return None
    content = block.get("content")
    return content if isinstance(content, str) and content else None


def _last_compaction(messages: list[Any]) -> tuple[int, int] | None:
    """Where the last compaction block with a summary is: (message, block) indexes."""
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for j in range(len(content) - 1, -1, -1):
            if _summary(content[j]) is not None:
                return i, j
    return None


def from_last_compaction(messages: Any) -> Any:
    """The messages from the last compaction on: the blocks before it left out, the block a
    text block of its summary (a blank line before any text that follows). The very list sent
    when there is none."""
    if not isinstance(messages, list):
        return messages
    found = _last_compaction(messages)
    if found is None:
        return messages
    i, j = found
    turn = messages[i]
    rest = turn["content"][j + 1 :]
    summary = str(_summary(turn["content"][j]))
    if any(isinstance(b, dict) and b.get("type") == "text" for b in rest):
        summary += "\n\n"
    return [{**turn, "content": [{"type": "text", "text": summary}, *rest]}, *messages[i + 1 :]]
