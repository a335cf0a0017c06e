"""The hold of a Responses (and so chat) request with a large inline image, as Codex sends a
screenshot (`codex exec -i`): the image reserves the model's context window once, its data
URL's characters are not counted again as a token each. Plain HTTP against the real box."""

from __future__ import annotations

import base64
import os

import httpx

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import usd_nanos
from tests.responses.conftest import OPENAI_MODEL, PRICES, ResponsesBox
from tests.support import TLS


def test_a_large_image_holds_a_context_window_not_its_bytes(fresh: ResponsesBox) -> None:
    """$0.30 covers a 3 MB screenshot on a $0.25/1M model (a 200k-token context: $0.05, and
    4,096 output tokens at $2/1M); counted a token per base64 character too it held $1 and was
    refused 402."""
    email, key = fresh.new_key(credit_usd="0.3")
    url = "data:image/png;base64," + base64.b64encode(os.urandom(3_000_000)).decode()
    content = [{"type": "input_image", "image_url": url}, {"type": "input_text", "text": "What?"}]
    body = {"model": OPENAI_MODEL, "input": [{"role": "user", "content": content}]}
    fresh.openai_fake.push(Reply(content="A screenshot.", prompt_tokens=1500, completion_tokens=4))
    answer = httpx.post(f"{fresh.server.base_url}/v1/responses", json=body, timeout=60,
                        headers={"authorization": f"Bearer {key}"}, verify=TLS)  # fmt: skip
    assert answer.status_code == 200, answer.text
    one = usd_nanos((1500, PRICES["in"]), (4, PRICES["out"]))
    assert fresh.balance_nanos(email) == (300_000_000 - one, 0)
