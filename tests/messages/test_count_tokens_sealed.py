"""count_tokens of a model the box estimates (an `openai` provider) with reasoning sealed in a
thinking block's signature (`thinking.display: "omitted"`, providers/messages_openai_display.py):
the reasoning counts as its text, as it reaches the model, not as the base64 carrying it (about
1.4 times as many tokens, so Claude Code's /context and its compaction ran early)."""

from __future__ import annotations

from typing import Any

from codelace_box.providers.reasoning_details import seal, with_reasoning
from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import OPENAI_ALIAS, MessagesBox

REASONING = "I weigh what the user asked, then the files I read before answering. " * 120


def history(thinking: dict[str, Any]) -> list[dict[str, Any]]:
    """A user turn, an assistant turn with this thinking block and an answer, a user turn."""
    answered = [thinking, {"type": "text", "text": "Done."}]
    return [{"role": "user", "content": "Do it."}, {"role": "assistant", "content": answered},
            {"role": "user", "content": "Thanks, and now?"}]  # fmt: skip


def test_sealed_reasoning_counts_as_its_text(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    client = fresh.client(key)
    sealed = seal(with_reasoning([], REASONING), OPENAI_ALIAS)
    assert len(sealed) > 1.3 * len(REASONING)
    shown = {"type": "thinking", "thinking": REASONING, "signature": ""}
    hidden = {"type": "thinking", "thinking": "", "signature": sealed}
    counts = [client.messages.count_tokens(model=OPENAI_ALIAS, messages=history(block))
              for block in (shown, hidden)]  # fmt: skip
    clear, counted = (c.input_tokens for c in counts)
    assert clear >= len(REASONING) // 4
    assert abs(counted - clear) <= 20, (counted, clear)
    assert fresh.fake.requests == [] and fresh.openai_fake.requests == []


def test_a_call_whose_upstream_counts_nothing_is_charged_the_reasoning_as_text(
    fresh: MessagesBox,
) -> None:
    """An upstream that reports no usage: the input charged is the box's estimate of the body,
    which counted the sealed reasoning as its base64 (about 1.33 times its tokens)."""
    email, key = fresh.new_key()
    client = fresh.client(key)
    sealed = seal(with_reasoning([], REASONING), OPENAI_ALIAS)
    shown = {"type": "thinking", "thinking": REASONING, "signature": ""}
    hidden = {"type": "thinking", "thinking": "", "signature": sealed}
    for block in (shown, hidden):
        fresh.openai_fake.push(Reply(content="Fine.", usage=False))
        client.messages.create(model=OPENAI_ALIAS, max_tokens=100, messages=history(block))
    clear, charged = (row["input_tokens"] for row in fresh.usage_rows(email))
    assert clear >= len(REASONING) // 4
    assert abs(charged - clear) <= 20, (charged, clear)
