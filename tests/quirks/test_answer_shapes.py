"""Non-streamed answers as OpenAI-compatible servers shape them, through every route with the
real SDKs: the text and the reasoning reach the client, and the reported usage is billed
exactly. Ollama's `reasoning`, vLLM's `reasoning` with `reasoning_content`, a null
finish_reason, no `role`, no `id`/`created`/`object`, and fields of the server's own."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from tests.fakes.openai_upstream import Reply
from tests.quirks.conftest import PRICES
from tests.quirks.routes import ROUTES, call, only_row
from tests.responses.conftest import ResponsesBox
from tests.support import usd_nanos

pytestmark = pytest.mark.timeout(60)
TEXT = "Hello! Nice to meet you."
THOUGHT = "A greeting; answer in kind."
USAGE = {"prompt_tokens": 33, "completion_tokens": 14, "total_tokens": 47}


def ollama() -> dict[str, Any]:
    message = {"role": "assistant", "content": TEXT, "reasoning": THOUGHT}
    return {"id": "chatcmpl-417", "object": "chat.completion", "created": 1733000000,
            "model": "qwen3:8b", "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": USAGE}  # fmt: skip


def vllm() -> dict[str, Any]:
    message = {"role": "assistant", "content": TEXT, "reasoning": THOUGHT,
               "reasoning_content": THOUGHT, "tool_calls": [], "refusal": None}  # fmt: skip
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop",
              "stop_reason": None, "token_ids": None}  # fmt: skip
    return {"id": "chatcmpl-v1", "object": "chat.completion", "created": 1733000000,
            "model": "Qwen/Qwen3-8B", "choices": [choice], "service_tier": None,
            "usage": USAGE, "prompt_logprobs": None, "kv_transfer_params": None}  # fmt: skip


def bare() -> dict[str, Any]:
    """No id, object, created or role; a null finish_reason; the reasoning as DeepSeek names it."""
    message = {"content": TEXT, "reasoning_content": THOUGHT}
    return {"model": "m", "choices": [{"index": 0, "message": message, "finish_reason": None}],
            "usage": USAGE}  # fmt: skip


SHAPES = {"ollama": ollama, "vllm": vllm, "bare": bare}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("route", ROUTES)
def test_answer_shapes_give_text_and_reasoning_and_bill_the_usage(
    box: ResponsesBox, route: str, shape: str
) -> None:
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    raw = json.dumps(SHAPES[shape]()).encode()
    box.openai_fake.push(Reply(raw=[raw], content_type="application/json"))
    seen = call(box, key, route, stream=False)
    assert seen.text == TEXT
    if route != "chat":  # chat: the message as sent (its reasoning fields untouched)
        assert seen.reasoning == THOUGHT
    row = only_row(box, email)
    cost = usd_nanos((33, PRICES["in"]), (14, PRICES["out"]))
    assert (row["estimated"], row["cost_nanos"]) == (0, cost)
    assert box.balance_nanos(email) == (start - cost, 0)
    assert (seen.input_tokens, seen.output_tokens) == (33, 14)
    if seen.cost_usd is not None:
        assert seen.cost_usd * 10**9 == Decimal(cost)
