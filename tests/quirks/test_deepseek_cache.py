"""DeepSeek reports its prompt-cache reads as `prompt_cache_hit_tokens` (and the rest as
`prompt_cache_miss_tokens`) at the top of `usage`, not as OpenAI's
`prompt_tokens_details.cached_tokens`: those tokens are cache reads, billed at the model's
cache-read price on every route, streamed or not, and shown as such by each dialect."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.fakes.compatible_wire import deepseek_answer, deepseek_stream, deepseek_usage
from tests.fakes.openai_upstream import Reply
from tests.quirks.conftest import PRICES
from tests.quirks.routes import ROUTES, call, only_row
from tests.responses.conftest import ResponsesBox
from tests.support import usd_nanos

pytestmark = pytest.mark.timeout(60)
TEXT = "Hello! How can I assist you today?"
THOUGHT = "The user greets me, so I greet back."
PROMPT, HIT, COMPLETION, REASONING = 1500, 1280, 30, 12


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
@pytest.mark.parametrize("route", ROUTES)
def test_deepseek_cache_hits_are_billed_as_cache_reads(
    box: ResponsesBox, route: str, stream: bool
) -> None:
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    usage = deepseek_usage(PROMPT, HIT, COMPLETION, REASONING)
    if stream:
        box.openai_fake.push(Reply(raw=deepseek_stream(TEXT, usage, THOUGHT)))
    else:
        body = deepseek_answer(TEXT, usage, THOUGHT)
        box.openai_fake.push(Reply(raw=[body], content_type="application/json"))
    seen = call(box, key, route, stream=stream)
    assert (seen.text, seen.reasoning) == (TEXT, THOUGHT)
    row = only_row(box, email)
    cost = usd_nanos((PROMPT - HIT, PRICES["in"]), (HIT, PRICES["read"]),
                     (COMPLETION, PRICES["out"]))  # fmt: skip
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"]) == (
        PROMPT, HIT, COMPLETION)  # fmt: skip
    assert row["cost_nanos"] == cost and box.balance_nanos(email) == (start - cost, 0)
    assert (seen.input_tokens, seen.output_tokens) == (PROMPT, COMPLETION)
    assert seen.cache_read_tokens == HIT  # chat: also as OpenAI's cached_tokens
    if seen.cost_usd is not None:
        assert seen.cost_usd * 10**9 == Decimal(cost)


@pytest.mark.parametrize(
    ("prompt_details", "billed"),
    [(None, HIT), ({"cached_tokens": 0}, HIT), ({"cached_tokens": HIT}, HIT),
     ({"cached_tokens": 64}, 64)],
    ids=["hits-only", "zero-cached", "both", "cached-wins"],
)  # fmt: skip
def test_deepseek_usage_shapes_read_as_cache_reads(
    prompt_details: dict[str, int] | None, billed: int
) -> None:
    """Wire data: DeepSeek's usage alone, beside a `cached_tokens` of 0 or the same count (as
    newer DeepSeek sends both); a nonzero `cached_tokens` of OpenAI's is the one that counts."""
    from codelace_box.providers.openai_usage import usage_from

    raw = deepseek_usage(PROMPT, HIT, COMPLETION)
    if prompt_details is not None:
        raw["prompt_tokens_details"] = prompt_details
    usage = usage_from(raw)
    assert usage is not None and usage.cache_read_tokens == billed
    assert usage.details["prompt_cache_hit_tokens"] == HIT  # DeepSeek's own, as sent
