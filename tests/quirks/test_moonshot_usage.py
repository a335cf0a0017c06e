"""Moonshot's (Kimi's) usage: its cache reads are `cached_tokens` at the top of `usage` (not
OpenAI's `prompt_tokens_details.cached_tokens`), and a stream gives its usage inside the
finishing choice of its last chunk (`choices[0].usage`), none at the top. Both are read: the
reads billed at the cache-read price, and a stream billed the counts it reported (not an
estimate), on every route."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.fakes.compatible_wire import moonshot_stream, moonshot_usage
from tests.quirks.conftest import PRICES
from tests.quirks.routes import ROUTES, call, only_row, push_usage_reply
from tests.responses.conftest import ResponsesBox
from tests.support import usd_nanos

pytestmark = pytest.mark.timeout(60)
TEXT = "Hello! I am Kimi, nice to meet you."
PROMPT, CACHED, COMPLETION = 1900, 1536, 11


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
@pytest.mark.parametrize("route", ROUTES)
def test_moonshot_usage_is_billed_with_its_cache_reads(
    box: ResponsesBox, route: str, stream: bool
) -> None:
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    usage = moonshot_usage(PROMPT, CACHED, COMPLETION)
    push_usage_reply(box, stream, moonshot_stream(TEXT, usage), TEXT, usage)
    seen = call(box, key, route, stream=stream)
    assert seen.text == TEXT
    row = only_row(box, email)
    cost = usd_nanos((PROMPT - CACHED, PRICES["in"]), (CACHED, PRICES["read"]),
                     (COMPLETION, PRICES["out"]))  # fmt: skip
    assert (row["estimated"], row["input_tokens"], row["cache_read_tokens"],
            row["output_tokens"]) == (0, PROMPT, CACHED, COMPLETION)  # fmt: skip
    assert row["cost_nanos"] == cost and box.balance_nanos(email) == (start - cost, 0)
    assert (seen.input_tokens, seen.output_tokens, seen.cache_read_tokens) == (
        PROMPT, COMPLETION, CACHED)  # fmt: skip
    if seen.cost_usd is not None:
        assert seen.cost_usd * 10**9 == Decimal(cost)
