"""Anthropic's thinking as an OpenAI model's `reasoning_effort` (pure code).

By the thinking budget (below 4096 tokens low, below 16384 medium, else high), or for adaptive
thinking (as Claude Code sends it) by the effort in force: a mid-conversation system message's
per-message `output_config.effort`, else the request's, else medium (xhigh and max: OpenAI's
high).
"""

from __future__ import annotations

from typing import Any

# thinking.budget_tokens -> reasoning_effort (below each bound)
_EFFORT_BOUNDS = ((4096, "low"), (16384, "medium"))
# output_config.effort -> reasoning_effort (Anthropic's xhigh, between high and max, and max:
# OpenAI's high, which every reasoning model takes)
_EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}


def reasoning_effort(thinking: Any, output_config: Any, messages: list[Any]) -> str | None:
    """reasoning_effort for Anthropic's thinking: by its budget, or (adaptive thinking, as
    Claude Code sends it) by the per-message effort in force, else `output_config.effort`
    (xhigh and max: OpenAI's high), else medium."""
    if not isinstance(thinking, dict) or thinking.get("type") == "disabled":
        return None
    budget = thinking.get("budget_tokens")
    if isinstance(budget, int):
        return next((effort for bound, effort in _EFFORT_BOUNDS if budget < bound), "high")
    asked = output_config.get("effort") if isinstance(output_config, dict) else None
    asked = _per_message_effort(messages) or asked
    return _EFFORTS.get(asked, "medium") if isinstance(asked, str) else "medium"


def _new_input(content: Any) -> bool:
    """Whether a user turn brings new input (a turn of tool results alone does not)."""
    blocks = content if isinstance(content, list) else [content]
    return any(not isinstance(b, dict) or b.get("type") != "tool_result" for b in blocks)


def _per_message_effort(messages: list[Any]) -> str | None:
    """The effort Anthropic's per-message effort (a system message's `output_config.effort`)
    puts in force for the answer: one right after a user turn with new input applies to its
    answer; one elsewhere from the next user turn with new input on."""
    in_force: str | None = None
    pending: str | None = None
    after_input = False
    for message in messages:
        role = message.get("role") if isinstance(message, dict) else None
        if role == "system":
            config = message.get("output_config")
            asked = config.get("effort") if isinstance(config, dict) else None
            if isinstance(asked, str) and after_input:
                in_force, pending = asked, None
            elif isinstance(asked, str):
                pending = asked
            continue
        after_input = role == "user" and _new_input(message.get("content"))
        if after_input and pending is not None:
            in_force, pending = pending, None
    return in_force
