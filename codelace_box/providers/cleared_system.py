"""Mid-conversation system messages that have ended, left out of a translated prompt (pure code).

Under Anthropic's beta `mid-conversation-system-clear-at-2026-08-21` a mid-conversation system
message with `clear_at: "next_user_message"` (Claude Code's one-turn reminders) holds until the
next user message and from then on is no longer in the prompt: a client keeps sending it (its
history, and the cached prefix, unchanged) and Anthropic leaves it out. A server that has no such
field would read it on every later turn: the box leaves it out (its text, per-message effort and
tool changes) before translating.
"""

from __future__ import annotations

from typing import Any

CLEAR_AT = "clear_at"
NEXT_USER_MESSAGE = "next_user_message"


def _ended(message: Any, user_after: bool) -> bool:
    """Whether a message is a system message that a later user message has cleared."""
    return (
        user_after
        and isinstance(message, dict)
        and message.get("role") == "system"
        and message.get(CLEAR_AT) == NEXT_USER_MESSAGE
    )


def without_cleared(messages: Any) -> Any:
    """The messages less the system messages a later user message cleared; the very list sent
    when there is none (a conversation without such messages pays one look a message)."""
    if not isinstance(messages, list):
        return messages
    kept: list[Any] | None = None
    user_after = False
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        if _ended(message, user_after):
            kept = kept if kept is not None else list(messages)
            del kept[i]
        elif isinstance(message, dict) and message.get("role") == "user":
            user_after = True
    return messages if kept is None else kept
