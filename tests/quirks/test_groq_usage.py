"""Groq puts a stream's usage in its last chunk under `x_groq.usage`, not at the top: the box
must bill those counts, not an estimate of its own, on every route."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.fakes.compatible_wire import groq_stream
from tests.fakes.openai_upstream import Reply
from tests.quirks.conftest import PRICES
from tests.quirks.routes import ROUTES, call, only_row
from tests.responses.conftest import ResponsesBox
from tests.support import usd_nanos

pytestmark = pytest.mark.timeout(60)
TEXT = "Hello there, how can I help?"


@pytest.mark.parametrize("route", ROUTES)
def test_a_groq_stream_is_billed_its_x_groq_usage(box: ResponsesBox, route: str) -> None:
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=groq_stream(TEXT, prompt=40, completion=7)))
    seen = call(box, key, route, stream=True)
    assert seen.text == TEXT
    row = only_row(box, email)
    cost = usd_nanos((40, PRICES["in"]), (7, PRICES["out"]))
    assert (row["input_tokens"], row["output_tokens"], row["estimated"]) == (40, 7, 0)
    assert row["cost_nanos"] == cost and box.balance_nanos(email) == (start - cost, 0)
    assert (seen.input_tokens, seen.output_tokens) == (40, 7)
    if seen.cost_usd is not None:
        assert seen.cost_usd * 10**9 == Decimal(cost)
