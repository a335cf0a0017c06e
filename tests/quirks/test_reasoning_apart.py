"""Some OpenAI-compatible servers (proxies in front of Gemini: CLIProxyAPI, new-api and others)
leave the thinking out of `completion_tokens` and report it only as
`completion_tokens_details.reasoning_tokens`, with `total_tokens` counting both. The provider
bills thinking as output: the box charges the answer and the thinking, not the answer alone
(OpenAI's own usage, where the reasoning is part of completion_tokens, stays as it is)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.fakes.compatible_wire import reasoning_apart_usage, usage_stream
from tests.quirks.conftest import PRICES
from tests.quirks.routes import ROUTES, call, only_row, push_usage_reply
from tests.responses.conftest import ResponsesBox
from tests.support import usd_nanos

pytestmark = pytest.mark.timeout(60)
TEXT = "15% of 240 is 36."
CASES = {  # (prompt, answer tokens, reasoning tokens): what was produced is their sum
    "answer-and-thinking": (20, 151, 382),
    "thinking-only": (21, 0, 60),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
@pytest.mark.parametrize("route", ROUTES)
def test_thinking_left_out_of_completion_tokens_is_charged(
    box: ResponsesBox, route: str, stream: bool, case: str
) -> None:
    prompt, answer, reasoning = CASES[case]
    usage = reasoning_apart_usage(prompt, answer, reasoning)
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    push_usage_reply(box, stream, usage_stream(TEXT, usage), TEXT, usage)
    seen = call(box, key, route, stream=stream)
    assert seen.text == TEXT
    row = only_row(box, email)
    produced = answer + reasoning
    cost = usd_nanos((prompt, PRICES["in"]), (produced, PRICES["out"]))
    assert (row["estimated"], row["input_tokens"], row["output_tokens"]) == (0, prompt, produced)
    assert row["cost_nanos"] == cost and box.balance_nanos(email) == (start - cost, 0)
    assert (seen.input_tokens, seen.output_tokens) == (prompt, produced)
    if seen.cost_usd is not None:
        assert seen.cost_usd * 10**9 == Decimal(cost)


def test_openai_reasoning_inside_completion_tokens_is_not_added_twice() -> None:
    """Wire data: OpenAI's usage (reasoning part of completion_tokens, total = prompt +
    completion) is taken as it is."""
    from codelace_box.providers.openai_usage import usage_from

    raw = {"prompt_tokens": 20, "completion_tokens": 533, "total_tokens": 553,
           "completion_tokens_details": {"reasoning_tokens": 382}}  # fmt: skip
    usage = usage_from(raw)
    assert usage is not None and usage.output_tokens == 533
