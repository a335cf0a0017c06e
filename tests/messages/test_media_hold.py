"""The hold of a Messages request with a large inline attachment (what Claude Code sends after
reading a PDF or a screenshot): the media reserves the model's context window once, its base64
characters are not counted again as a token each. Plain HTTP against the real box."""

from __future__ import annotations

import base64
import os

import httpx

from tests.fakes.anthropic_upstream import Reply
from tests.messages.conftest import MODEL, PRICES, MessagesBox, usd_nanos
from tests.support import TLS


def pdf_request(size: int) -> dict[str, object]:
    data = base64.b64encode(b"%PDF-1.4\n" + os.urandom(size)).decode()
    document = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                                "data": data}}  # fmt: skip
    content = [document, {"type": "text", "text": "What does it say?"}]
    return {"model": MODEL, "max_tokens": 1000, "messages": [{"role": "user", "content": content}]}


def test_a_large_pdf_holds_a_context_window_not_its_bytes(fresh: MessagesBox) -> None:
    """$5 covers a 3 MB PDF on a $3/1M model (at most a 200k-token context: $0.60, and 1,000
    output tokens); counted a token per base64 byte too it held $12 and was refused 402."""
    email, key = fresh.new_key(credit_usd="5")
    fresh.fake.script(Reply(text="A scan.", input_tokens=150_000, output_tokens=20))
    answer = httpx.post(f"{fresh.server.base_url}/v1/messages", json=pdf_request(3_000_000),
                        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                        timeout=60, verify=TLS)  # fmt: skip
    assert answer.status_code == 200, answer.text
    one = usd_nanos((150_000, PRICES["in"]), (20, PRICES["out"]))
    assert fresh.balance_nanos(email) == (5_000_000_000 - one, 0)
    (row,) = fresh.usage_rows(email)
    assert row["hold_nanos"] < 2_000_000_000  # 200k tokens at the dearest input price ($6), not 4M
