"""Reasoning that a server sends twice in one delta is produced once. vLLM (0.11 on) writes each
reasoning piece as `reasoning` and again as the deprecated `reasoning_content`; OpenRouter as
`reasoning` and again in a `reasoning.text` detail (with its `format`). When the stream brings
no usage, the box charges its own count of the output: each piece of reasoning counted once,
on every route, and the client sees it once."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from tests.fakes.compatible_wire import openrouter_reasoning_stream, vllm_reasoning_stream
from tests.fakes.openai_upstream import Reply
from tests.quirks.conftest import PRICES
from tests.quirks.routes import ROUTES, call, only_row
from tests.responses.conftest import ResponsesBox
from tests.support import usd_nanos

pytestmark = pytest.mark.timeout(60)
THOUGHT = "The user says hello so a short friendly greeting back is the right answer here"
TEXT = "Hello there, friend!"
SERVERS: dict[str, Callable[..., list[bytes]]] = {
    "vllm": vllm_reasoning_stream,
    "openrouter": openrouter_reasoning_stream,
}


def estimate(*texts: str) -> int:
    """The box's count of output it relayed with no usage (providers/tally.py): a token per
    four ASCII characters, never fewer than one per piece (a word a piece here)."""
    pieces = sum(len(text.split(" ")) for text in texts)
    return max(pieces, -(-sum(len(text) for text in texts) // 4))


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("route", ROUTES)
def test_reasoning_sent_twice_is_counted_once(box: ResponsesBox, route: str, server: str) -> None:
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=SERVERS[server](THOUGHT, TEXT, None)))
    seen = call(box, key, route, stream=True)
    assert (seen.text, seen.reasoning) == (TEXT, THOUGHT)
    row = only_row(box, email)
    produced = estimate(THOUGHT, TEXT)
    assert (row["estimated"], row["output_tokens"]) == (1, produced)
    cost = usd_nanos((row["input_tokens"], PRICES["in"]), (produced, PRICES["out"]))
    assert row["cost_nanos"] == cost and box.balance_nanos(email) == (start - cost, 0)
    assert seen.output_tokens == produced
    if seen.cost_usd is not None:
        assert seen.cost_usd * 10**9 == Decimal(cost)
