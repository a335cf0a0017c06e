"""/v1/messages and /v1/chat/completions from an `anthropic` provider whose stream sends more
than one message_delta ("one or more", as Anthropic's streaming docs say), a later one leaving
out counts an earlier one gave (MessageDeltaUsage's fields but output_tokens are nullable): the
counts are cumulative, so the call is charged what the anthropic SDK's final message says, the
latest value of each count, not message_start's for those the last delta left out."""

from __future__ import annotations

from typing import Any

import pytest

from tests.anthwire.conftest import MAX_TOKENS, MODEL, WireBox, cost_nanos
from tests.fakes import anthropic_wire as wire
from tests.fakes.hostile_upstream import SSE, Act, HostileUpstream

HELLO = [{"role": "user", "content": "hi"}]
START = {"input_tokens": 100, "cache_read_input_tokens": 0, "output_tokens": 3}
# The input grows past message_start's in the first message_delta (as a server tool's loop
# makes it; within this request's hold, which has no such tool)
GROWN = {"input_tokens": 900, "cache_read_input_tokens": 0, "output_tokens": 200}
LAST = {"output_tokens": 510}  # the second delta: only the (cumulative) output count
FINAL = {"input_tokens": 900, "cache_read_input_tokens": 0, "output_tokens": 510}


def _events() -> list[dict[str, Any]]:
    block = wire._block(0, {"type": "text", "text": ""}, wire._text("Sunny, 72F."))
    first = {"type": "message_delta", "usage": GROWN,
             "delta": {"stop_reason": None, "stop_sequence": None}}  # fmt: skip
    last = {"type": "message_delta", "usage": LAST,
            "delta": {"stop_reason": "end_turn", "stop_sequence": None}}  # fmt: skip
    return [wire._start(START), *block, first, last, {"type": "message_stop"}]


@pytest.mark.parametrize("route", ["messages", "chat"])
def test_a_later_message_delta_without_a_count_keeps_the_earlier_one(
    box: WireBox, hostile: HostileUpstream, route: str
) -> None:
    email, key = box.new_user("5")
    hostile.push(Act(200, [wire.frame(event) for event in _events()], content_type=SSE))
    if route == "messages":
        args = {"model": MODEL, "max_tokens": MAX_TOKENS, "messages": HELLO}
        with box.anthropic(key).messages.stream(**args) as events:
            usage = events.get_final_message().usage
        assert (usage.input_tokens, usage.output_tokens) == (900, 510)  # the SDK's reading
    else:
        chunks = box.sdk(key).chat.completions.create(
            model=MODEL,
            max_tokens=MAX_TOKENS,
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "Sunny, 72F."
    balance, held = box.balance_nanos(email)
    assert held == 0
    assert 5 * 1_000_000_000 - balance == cost_nanos(FINAL)
    row = box.usage_rows(email)[-1]
    assert (row["input_tokens"], row["output_tokens"]) == (900, 510)
