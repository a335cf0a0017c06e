"""A mid-conversation system message with `clear_at: "next_user_message"` (Anthropic's beta
`mid-conversation-system-clear-at-2026-08-21`, which Claude Code 2.1.332 sends for its one-turn
reminders) holds until the next user message: from then on it is no longer in the prompt.
Toward an `openai` provider it stayed a system message for good (every later turn read a
reminder meant for one), its per-message effort and tool changes with it."""

from __future__ import annotations

from typing import Any

from tests.messages.conftest import OPENAI_MODEL, MessagesBox

CLEAR = "next_user_message"
LATE = {
    "name": "mcp__late__lookup",
    "description": "Look a word up",
    "input_schema": {"type": "object", "properties": {"word": {"type": "string"}}},
}


def reminder(text: str, **fields: Any) -> dict[str, Any]:
    return {"role": "system", "content": text, "clear_at": CLEAR, **fields}


def sent_for(box: MessagesBox, messages: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    _, key = box.new_key()
    body = {"model": OPENAI_MODEL, "max_tokens": 64, "messages": messages, **fields}
    return box.translated(key, body)


def system_texts(sent: dict[str, Any]) -> list[Any]:
    return [m["content"] for m in sent["messages"] if m["role"] == "system"]


def test_a_reminder_ends_at_the_next_user_message(fresh: MessagesBox) -> None:
    sent = sent_for(
        fresh,
        [
            {"role": "user", "content": "hi"},
            reminder("Say what you are doing."),
            {"role": "assistant", "content": "Hello."},
            {"role": "system", "content": "The project is Go."},
            {"role": "user", "content": "go on"},
        ],
    )
    assert system_texts(sent) == ["The project is Go."]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "system", "user"]


def test_a_reminder_holds_for_the_answer_it_was_sent_with(fresh: MessagesBox) -> None:
    sent = sent_for(
        fresh,
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "go on"},
            reminder("Say what you are doing."),
        ],
    )
    assert system_texts(sent) == ["Say what you are doing."]


def test_a_cleared_message_takes_its_effort_and_tool_changes_with_it(
    fresh: MessagesBox,
) -> None:
    addition = {"type": "tool_addition", "tool": {"type": "tool_definition", "definition": LATE}}
    sent = sent_for(
        fresh,
        [
            {"role": "user", "content": "hi"},
            reminder("Think hard.", output_config={"effort": "low"}),
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "go on"},
            {"role": "assistant", "content": "Ok."},
            {"role": "system", "content": [addition], "clear_at": CLEAR},
            {"role": "user", "content": "more"},
        ],
        thinking={"type": "adaptive"},
        output_config={"effort": "high"},
    )
    assert system_texts(sent) == []
    assert sent["reasoning_effort"] == "high"
    assert "tools" not in sent
