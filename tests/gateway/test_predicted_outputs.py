"""OpenAI's predicted outputs (`prediction`): the prediction's tokens that the answer does not
use are billed at output prices, past max_tokens; the hold must reserve them as output, or a
long prediction is the operator's loss. Real box, fake OpenAI upstream."""

from __future__ import annotations

import pytest

from codelace_box.gateway.request import predicted_tokens
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import IN_PRICE, MODEL, NANOS, OUT_PRICE, BoxFactory, cost_nanos

pytestmark = pytest.mark.timeout(120)
DIGITS = "0123456789" * 3_000  # 30,000 characters: 10,000 tokens to a 3-digit tokenizer


def test_the_prediction_is_reserved_a_token_per_byte() -> None:
    assert predicted_tokens({}) == 0
    assert predicted_tokens({"prediction": {"type": "content", "content": "数据"}}) >= 6
    parts = [{"type": "text", "text": DIGITS}, {"type": "text", "text": "x"}]
    assert predicted_tokens({"prediction": {"type": "content", "content": parts}}) >= 30_001


def test_rejected_prediction_tokens_are_charged_not_lost(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """max_tokens 10 and a prediction of 30,000 digits the answer does not use: OpenAI reports
    10,010 completion tokens (10,000 of them rejected prediction). They cost $0.10; held for
    only 10 output tokens, all but the hold was the operator's loss."""
    box = box_factory()
    email, key = box.new_user("1")
    fake.push(Reply(content="x = 1", prompt_tokens=20, completion_tokens=10_010))
    body = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "Edit"}],
            "prediction": {"type": "content", "content": DIGITS}}  # fmt: skip
    with box.http(key) as http:
        answer = http.post("/v1/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    row = box.settled_row(answer.headers["x-request-id"])
    cost = cost_nanos(20, 10_010, IN_PRICE, OUT_PRICE)
    assert (row["output_tokens"], row["cost_nanos"]) == (10_010, cost)
    assert box.balance(email) == (NANOS - cost, 0)
    assert "operator's loss" not in box.server.log_text()
