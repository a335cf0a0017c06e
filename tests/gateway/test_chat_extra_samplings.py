"""/v1/chat/completions to an `openai` provider that fronts Claude (OpenRouter, LiteLLM): a
body's server-side compaction edit (`context_management`) goes upstream as sent, and Anthropic
bills the summarisation pass it runs, which such a front reports in the usage. The hold must
cover it as /v1/messages' does (gateway/extra_samplings.py), or the charge stops at a hold of
the answer alone and the rest is the operator's loss. The advisor tool, the other extra
sampling, is refused on chat whatever the operator allowed. Real box, fake OpenAI-compatible
upstream."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import IN_PRICE, MODEL, NANOS, OUT_PRICE, Box, BoxFactory, cost_nanos

pytestmark = pytest.mark.timeout(120)
CONTEXT = 20_000  # the model's window: one sampling's input and output stay within it
ADVISOR = {"type": "advisor_20260301", "name": "advisor", "model": "claude-opus-4-6",
           "max_uses": 2, "max_tokens": 2048}  # fmt: skip


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Iterator[Box]:
    made = box_factory()
    made.cli("models", "set", MODEL, "--context-tokens", str(CONTEXT))
    made.until_reloaded()
    yield made


def _charged_in_full(
    box: Box, fake: FakeOpenAI, body: dict[str, object], used: tuple[int, int]
) -> None:
    """The upstream reports `used` (input, output); the call is charged all of it."""
    email, key = box.new_user("1")
    fake.push(Reply(content="Summarised.", prompt_tokens=used[0], completion_tokens=used[1]))
    with box.http(key) as http:
        answer = http.post("/v1/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    row = box.settled_row(answer.headers["x-request-id"])
    cost = cost_nanos(*used, IN_PRICE, OUT_PRICE)
    assert (row["input_tokens"], row["output_tokens"], row["cost_nanos"]) == (*used, cost)
    assert row["hold_nanos"] >= cost
    assert box.balance(email) == (NANOS - cost, 0)


@pytest.mark.parametrize("stream", [False, True])
def test_a_compaction_pass_through_an_openai_front_is_held_for(
    box: Box, fake: FakeOpenAI, stream: bool
) -> None:
    """max_tokens 100 and a compact edit: the summarisation pass read 12,000 tokens and wrote
    6,000, reported in the usage with the answer's. The hold was the body and 100 output
    tokens: the charge stopped there."""
    body = {"model": MODEL, "max_tokens": 100, "stream": stream,
            "stream_options": {"include_usage": True},
            "context_management": {"edits": [{"type": "compact_20260112"}]},
            "messages": [{"role": "user", "content": "long talk " * 300}]}  # fmt: skip
    _charged_in_full(box, fake, body, (12_000 + 800, 6_000 + 10))


def test_an_advisor_tool_through_an_openai_front_is_a_400(box: Box, fake: FakeOpenAI) -> None:
    """The operator allowed `advisor` for the provider, but a chat body reaches a front of
    Claude as sent and its usage does not tell the advisor's tokens apart: they would be
    charged at the requested model's prices, and the advisor model (here Opus, for a key
    limited to the requested model) would escape the catalog and the key's allow-list that
    /v1/messages holds it to (gateway/advisor.py). Refused: nothing sent, nothing charged."""
    box.cli("providers", "update", "fake", "--allow-field", "advisor")
    box.until_reloaded()
    try:
        email, key = box.new_user("1")
        body = {"model": MODEL, "max_tokens": 100, "tools": [ADVISOR],
                "messages": [{"role": "user", "content": "Plan the migration."}]}  # fmt: skip
        before = len(fake.requests)
        with box.http(key) as http:
            answer = http.post("/v1/chat/completions", json=body)
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["param"] == "tools.0" and "/v1/messages" in error["message"], error
        assert len(fake.requests) == before and box.balance(email) == (NANOS, 0)
    finally:
        box.cli("providers", "update", "fake", "--no-allow-field", "advisor")
        box.until_reloaded()
