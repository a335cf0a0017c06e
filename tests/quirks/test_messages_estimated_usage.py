"""An answer whose server reports no usage (llama.cpp or LM Studio builds without
`include_usage`, a proxy that drops the last chunk) is charged the box's own count. Every client
must see the counts it was charged: the Messages API client (Claude Code) reads them from
`message_delta`, and an input of 0 or an output counted another way is not what it paid for."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.fakes.compatible_wire import DONE, chunk, event, text_pieces
from tests.fakes.openai_upstream import Reply
from tests.quirks.routes import ROUTES, call, only_row
from tests.responses.conftest import ResponsesBox

pytestmark = pytest.mark.timeout(60)
TEXT = "a b c d e f g h i j k l"  # a piece a token, fewer than a token per 4 characters


def no_usage_stream(text: str) -> list[bytes]:
    body = [event(chunk({"role": "assistant", "content": ""}))]
    body += [event(chunk({"content": piece})) for piece in text_pieces(text)]
    return [*body, event(chunk({}, "stop")), DONE]


def no_usage_answer(text: str) -> bytes:
    choice = {"index": 0, "message": {"role": "assistant", "content": text},
              "finish_reason": "stop"}  # fmt: skip
    return json.dumps({"id": "cmpl-nousage", "object": "chat.completion", "created": 1,
                       "model": "local", "choices": [choice]}).encode()  # fmt: skip


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
@pytest.mark.parametrize("route", ROUTES)
def test_clients_see_the_counts_an_estimated_call_was_charged(
    box: ResponsesBox, route: str, stream: bool
) -> None:
    email, key = box.new_key()
    if stream:
        box.openai_fake.push(Reply(raw=no_usage_stream(TEXT)))
    else:
        box.openai_fake.push(Reply(raw=[no_usage_answer(TEXT)], content_type="application/json"))
    seen = call(box, key, route, stream=stream)
    assert seen.text == TEXT
    row = only_row(box, email)
    assert row["estimated"] == 1 and row["input_tokens"] > 0 and row["output_tokens"] > 0
    assert (seen.input_tokens, seen.output_tokens) == (row["input_tokens"], row["output_tokens"])
    if seen.cost_usd is not None:
        assert seen.cost_usd * 10**9 == Decimal(row["cost_nanos"])
