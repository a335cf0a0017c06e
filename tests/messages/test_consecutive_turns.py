"""Two user turns in a row (a client that sent again before an answer came, or Claude Code's
own messages after an interruption): Anthropic combines consecutive turns of one role, so the
box passes them to an `anthropic` provider as sent, and to an `openai` one as two user messages
in order (Chat Completions takes any sequence). And Claude Code's task budget, which the fake
Anthropic server refused as Anthropic does not."""

from __future__ import annotations

from typing import Any

import pytest

from tests.messages.conftest import MODEL, NEEDS_SDK, OPENAI_MODEL, MessagesBox

pytestmark = NEEDS_SDK

TWICE = [
    {"role": "user", "content": "The secret word is pelican."},
    {"role": "user", "content": [{"type": "text", "text": "What is the secret word?"}]},
]


def user_texts(messages: list[dict[str, Any]]) -> list[str]:
    """The text of each user message an OpenAI upstream received, in order."""
    texts = []
    for message in messages:
        if message["role"] != "user":
            continue
        content = message["content"]
        parts = [content] if isinstance(content, str) else [p["text"] for p in content]
        texts.append(" ".join(parts))
    return texts


@pytest.mark.parametrize("stream", [False, True])
def test_two_user_turns_in_a_row_reach_an_openai_provider(fresh: MessagesBox, stream: bool) -> None:
    _, key = fresh.new_key()
    client = fresh.client(key)
    if stream:
        with client.messages.stream(model=OPENAI_MODEL, max_tokens=50, messages=TWICE) as events:
            answer = events.get_final_message()
    else:
        answer = client.messages.create(model=OPENAI_MODEL, max_tokens=50, messages=TWICE)
    assert answer.content and answer.usage.output_tokens > 0
    sent = fresh.openai_fake.requests[-1].body["messages"]
    assert [m["role"] for m in sent if m["role"] != "system"] == ["user", "user"]
    texts = user_texts(sent)
    assert "pelican" in texts[0] and "secret word?" in texts[-1]


def test_two_user_turns_in_a_row_pass_through_to_anthropic(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    answer = fresh.client(key).messages.create(model=MODEL, max_tokens=50, messages=TWICE)
    assert answer.content
    assert fresh.fake.requests[-1].body["messages"] == TWICE


@pytest.mark.parametrize("model", [MODEL, OPENAI_MODEL])
def test_claude_codes_task_budget_is_answered(fresh: MessagesBox, model: str) -> None:
    """Claude Code sends output_config.task_budget under the task-budgets beta: passed through
    to Anthropic as sent (an advisory budget; the price is the tokens'), and left out for an
    `openai` provider, which has no such field."""
    _, key = fresh.new_key()
    config = {"effort": "high", "task_budget": {"type": "tokens", "total": 64000}}
    answer = fresh.client(key).messages.create(
        model=model, max_tokens=50, messages=TWICE[:1], extra_body={"output_config": config},
        extra_headers={"anthropic-beta": "task-budgets-2026-03-13"},
    )  # fmt: skip
    assert answer.content
    if model == MODEL:
        assert fresh.fake.requests[-1].body["output_config"] == config
    else:
        assert "task_budget" not in str(fresh.openai_fake.requests[-1].body)
