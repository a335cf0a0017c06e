"""What a Messages call with a compaction edit (`compact_20260112`) holds, and its 402: toward
Anthropic a context window for the pass (whatever the conversation's length, so a 402 for it
does not send the user to /clear); translated for another model, which runs no such pass (the
edit is not sent), nothing for it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fakes.openai_upstream import Reply as OpenAIReply
from tests.messages.conftest import MODEL, OPENAI_MODEL, MessagesBox
from tests.support import TLS

COMPACT = {"edits": [{"type": "compact_20260112"}]}


def compacting(box: MessagesBox, key: str, model: str) -> httpx.Response:
    body: dict[str, Any] = {"model": model, "max_tokens": 100, "context_management": COMPACT,
                            "messages": [{"role": "user", "content": "Hi"}]}  # fmt: skip
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    return httpx.post(box.server.base_url + "/v1/messages", json=body, headers=headers,
                      timeout=30, verify=TLS)  # fmt: skip


def test_a_pass_past_what_is_left_is_not_called_the_input(fresh: MessagesBox) -> None:
    """$1 left: "Hi" holds about $3 for the pass (200,000 tokens at $15/1M): not "its input
    alone", nor /clear (which holds the same), but the pass's part, and add credit."""
    _, key = fresh.new_key(credit_usd="1")
    answer = compacting(fresh, key, MODEL)
    assert answer.status_code == 402, answer.text
    message = answer.json()["error"]["message"]
    assert "input alone" not in message and "/clear" not in message, message
    assert "($3.00 of it for the compaction or advisor passes" in message, message
    assert message.endswith("more than the $1.00 of credit left (its balance, less what its "
                            "requests in flight hold): add credit"), message  # fmt: skip
    assert fresh.fake.requests == []


def test_a_translated_call_holds_nothing_for_a_pass_it_does_not_run(fresh: MessagesBox) -> None:
    """$0.05 left toward a GPT model (a pass would hold $0.40 at $2/1M): "Hi" is answered."""
    _, key = fresh.new_key(credit_usd="0.05")
    fresh.openai_fake.push(OpenAIReply(content="Hello."))
    answer = compacting(fresh, key, OPENAI_MODEL)
    assert answer.status_code == 200, answer.text
    assert "context_management" not in fresh.openai_fake.requests[-1].body
