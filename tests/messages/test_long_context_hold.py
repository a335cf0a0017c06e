"""The hold of a request that asks for Anthropic's 1M-token context (`anthropic-beta:
context-1m-*`, allowed by the operator for the provider) with media attached: the media
reserves the window the request may fill, a million tokens, not the model's 200,000 default.
Plain HTTP against the real box, fake Anthropic upstream."""

from __future__ import annotations

import httpx
import pytest

from codelace_box.gateway.messages import LONG_CONTEXT_TOKENS, media_context
from tests.fakes.anthropic_upstream import Reply
from tests.messages.conftest import PRICES, MessagesBox, usd_nanos
from tests.messages.test_media_hold import pdf_request
from tests.support import TLS

BETA = "context-1m-2025-08-07"


def test_the_long_context_beta_reserves_a_million_tokens_for_media() -> None:
    assert media_context(200_000, "") == 200_000
    assert media_context(200_000, f"fine-grained-tool-streaming-2025-05-14,{BETA}") == (
        LONG_CONTEXT_TOKENS
    )
    assert media_context(2_000_000, BETA) == 2_000_000
    assert media_context(200_000, BETA.replace("context-1m", "Context-1M")) == (
        LONG_CONTEXT_TOKENS
    )  # as the flag is refused whatever its case (billed_fields.py): it opens the window so


@pytest.mark.parametrize("beta", [BETA, BETA.replace("context-1m", "Context-1M")])
def test_a_pdf_filling_a_1m_context_is_charged_what_it_cost(fresh: MessagesBox, beta: str) -> None:
    """A PDF of 700,000 tokens under the 1M beta (in whatever case it is sent): it cost $2.10;
    held for a 200k context ($1.20 at the dearest input price) it was charged that, the rest
    the operator's loss."""
    email, key = fresh.new_key(credit_usd="10")
    fresh.fake.script(Reply(text="A long read.", input_tokens=700_000, output_tokens=20))
    answer = httpx.post(f"{fresh.server.base_url}/v1/messages", json=pdf_request(30_000),
                        headers={"x-api-key": key, "anthropic-version": "2023-06-01",
                                 "anthropic-beta": beta}, timeout=60, verify=TLS)  # fmt: skip
    assert answer.status_code == 200, answer.text
    cost = usd_nanos((700_000, PRICES["in"]), (20, PRICES["out"]))
    assert fresh.balance_nanos(email) == (10_000_000_000 - cost, 0)
    assert "operator's loss" not in fresh.server.log_text()


def test_the_long_context_beta_named_in_the_body_reserves_a_million_tokens_too(
    fresh: MessagesBox,
) -> None:
    """The flag in the body's `anthropic_beta` (Bedrock's field, passed on by a gateway in
    front of it; allowed here) opens the 1M window as the header's does, and the media's hold
    is for it: $3 covers a PDF under the 200k window ($1.20 at the dearest input price) but
    not under the million a body flag opens (402 before any upstream call)."""
    _, key = fresh.new_key(credit_usd="3")
    body = pdf_request(30_000) | {"anthropic_beta": [BETA]}
    answer = httpx.post(f"{fresh.server.base_url}/v1/messages", json=body,
                        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                        timeout=60, verify=TLS)  # fmt: skip
    assert answer.status_code == 402, answer.text
    assert fresh.fake.requests == []
