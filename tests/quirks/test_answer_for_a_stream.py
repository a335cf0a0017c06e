"""Some OpenAI-compatible servers answer a streamed call with one whole JSON completion (SGLang
did so for any stream with tools, issue 2810; proxies that buffer): the upstream did the work
and bills for it, so the box relays that answer as the stream its client asked for, on every
route, and bills its usage, not an error that costs the user nothing."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.fakes.compatible_wire import usage_answer
from tests.fakes.openai_upstream import Reply
from tests.quirks.conftest import MODEL, PRICES
from tests.quirks.routes import ROUTES, call, only_row
from tests.responses.conftest import ResponsesBox
from tests.support import usd_nanos

pytestmark = pytest.mark.timeout(60)
TEXT = "Hello from a server that never streams."
USAGE = {"prompt_tokens": 19, "completion_tokens": 8, "total_tokens": 27}


@pytest.mark.parametrize("route", ROUTES)
def test_a_whole_answer_to_a_stream_is_streamed_and_billed(box: ResponsesBox, route: str) -> None:
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=[usage_answer(TEXT, USAGE)], content_type="application/json"))
    seen = call(box, key, route, stream=True)
    assert seen.text == TEXT
    row = only_row(box, email)
    cost = usd_nanos((19, PRICES["in"]), (8, PRICES["out"]))
    assert (row["status"], row["estimated"], row["cost_nanos"]) == ("ok", 0, cost)
    assert box.balance_nanos(email) == (start - cost, 0)
    assert (seen.input_tokens, seen.output_tokens) == (19, 8)
    if seen.cost_usd is not None:
        assert seen.cost_usd * 10**9 == Decimal(cost)


def test_its_tool_calls_reach_a_streaming_messages_client(box: ResponsesBox) -> None:
    email, key = box.new_key()
    calls = [{"id": "call_s1", "type": "function",
              "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}]  # fmt: skip
    message = {"role": "assistant", "content": None, "reasoning_content": "Look it up.",
               "tool_calls": calls}  # fmt: skip
    answer = {"id": "sg-1", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
              "usage": USAGE}  # fmt: skip
    box.openai_fake.push(Reply(raw=[json.dumps(answer).encode()], content_type="application/json"))
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    with box.client(key).messages.stream(
        model=MODEL, max_tokens=300, tools=[{"name": "weather", "input_schema": schema}],
        messages=[{"role": "user", "content": "Oslo?"}],
    ) as stream:  # fmt: skip
        final = stream.get_final_message()
    blocks = [(b.type, getattr(b, "thinking", None) or getattr(b, "input", None))
              for b in final.content]  # fmt: skip
    assert blocks == [("thinking", "Look it up."), ("tool_use", {"city": "Oslo"})]
    assert final.stop_reason == "tool_use" and only_row(box, email)["estimated"] == 0
