"""An `anthropic` provider (any base URL: Ollama's Anthropic-compatible /v1/messages among them)
that reports `input_tokens: 0` beside an output count counted no input: Ollama gives 0 for a
prompt it had cached (ollama/ollama#5370), so the same long prompt sent again would cost only
its output. No call has an empty prompt: every route charges the box's count of the input,
streamed or not, as for an OpenAI-compatible server (tests/quirks/test_zero_usage.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fakes.anthropic_upstream import Reply
from tests.messages.conftest import usd_nanos
from tests.responses.conftest import ANTHROPIC_MODEL, PRICES, ResponsesBox
from tests.support import TLS

pytestmark = pytest.mark.timeout(60)
PROMPT = "Count these words. " * 40  # 760 bytes: some 190 tokens by the box's count
ROUTES = ("/v1/chat/completions", "/v1/messages", "/v1/responses")


def _body(route: str, stream: bool) -> dict[str, Any]:
    if route == "/v1/responses":
        return {"model": ANTHROPIC_MODEL, "input": PROMPT, "max_output_tokens": 100,
                "stream": stream}  # fmt: skip
    asked = [{"role": "user", "content": PROMPT}]
    return {"model": ANTHROPIC_MODEL, "messages": asked, "max_tokens": 100, "stream": stream}


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
@pytest.mark.parametrize("route", ROUTES)
def test_an_input_count_of_zero_is_charged_the_box_count(
    fresh: ResponsesBox, route: str, stream: bool
) -> None:
    email, key = fresh.new_key()
    fresh.fake.script(Reply(text="Eighty.", input_tokens=0, output_tokens=6))
    before, _ = fresh.balance_nanos(email)
    headers = {"authorization": f"Bearer {key}", "anthropic-version": "2023-06-01"}
    answer = httpx.post(f"{fresh.server.base_url}{route}", json=_body(route, stream),
                        headers=headers, verify=TLS, timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    row = fresh.usage_rows(email)[-1]
    assert row["estimated"] == 1 and row["input_tokens"] >= 150 and row["output_tokens"] == 6
    charged = usd_nanos((row["input_tokens"], PRICES["in"]), (6, PRICES["out"]))
    assert row["cost_nanos"] == charged
    assert fresh.balance_nanos(email) == (before - charged, 0)
