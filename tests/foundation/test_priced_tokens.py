"""priced_tokens_nanos (money.py) and set_cache_tokens (providers/openai_usage.py), written as
plain loops and look-ups for the hot path, give what their definitions say."""

from __future__ import annotations

import random

import pytest

from codelace_box.money import TOKENS_PER_PRICE_UNIT, priced_tokens_nanos
from codelace_box.providers.base import Usage
from codelace_box.providers.openai_usage import set_cache_tokens


def _defined(pairs: list[tuple[int, int]]) -> int:
    """The sum of count x price over the pairs with both positive, rounded up once."""
    scaled = sum(count * price for count, price in pairs if count > 0 and price > 0)
    return -(-scaled // TOKENS_PER_PRICE_UNIT)


def test_priced_tokens_is_the_sum_rounded_up_once() -> None:
    draw = random.Random(23)
    for _ in range(20_000):
        pairs = [
            (draw.randint(-(2**41), 2**41), draw.choice([0, -5, draw.randint(1, 10**12)]))
            for _ in range(draw.randint(0, 5))
        ]
        assert priced_tokens_nanos(*pairs) == _defined(pairs)
    assert priced_tokens_nanos((1, 1)) == 1  # a millionth of a nano-USD is charged as one
    assert priced_tokens_nanos((-3, 10**6), (2, -1)) == 0


@pytest.mark.parametrize(
    ("details", "reads", "writes"),
    [
        ({"cached_tokens": 30, "cache_write_tokens": 50}, 30, 50),
        ({"cached_tokens": 80, "cache_write_tokens": 50}, 80, 20),  # no more than the prompt
        ({"cached_tokens": -4, "cache_write_tokens": True}, 0, 0),
        ({"cache_write_tokens": 7}, 0, 7),
        (None, 0, 0),
    ],
)
def test_cache_tokens_are_parts_of_the_prompt(details: object, reads: int, writes: int) -> None:
    usage = Usage(100, 5)
    set_cache_tokens(usage, details)
    assert (usage.cache_read_tokens, usage.cache_write_tokens) == (reads, writes)
