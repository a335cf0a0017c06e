"""Some OpenAI-compatible servers ignore `"stream": false` and always answer with an SSE stream
(unsloth's server, KAITO's transformers runtime, mini-sglang, before their fixes). The upstream
did the work and bills for it: the box reads the stream into the answer its client asked for,
on every route, and bills the usage it reported, not a 502 that costs the user nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.fakes.compatible_wire import usage_stream
from tests.fakes.openai_upstream import Reply
from tests.quirks.conftest import PRICES
from tests.quirks.routes import ROUTES, call, only_row
from tests.responses.conftest import ResponsesBox
from tests.support import usd_nanos

pytestmark = pytest.mark.timeout(60)
TEXT = "Hello from a server that always streams."
USAGE = {"prompt_tokens": 17, "completion_tokens": 9, "total_tokens": 26}


@pytest.mark.parametrize("route", ROUTES)
def test_an_answer_that_came_as_a_stream_is_answered_and_billed(
    box: ResponsesBox, route: str
) -> None:
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=usage_stream(TEXT, USAGE)))
    seen = call(box, key, route, stream=False)
    assert seen.text == TEXT
    row = only_row(box, email)
    cost = usd_nanos((17, PRICES["in"]), (9, PRICES["out"]))
    assert (row["status"], row["estimated"], row["cost_nanos"]) == ("ok", 0, cost)
    assert box.balance_nanos(email) == (start - cost, 0)
    assert (seen.input_tokens, seen.output_tokens) == (17, 9)
    if seen.cost_usd is not None:
        assert seen.cost_usd * 10**9 == Decimal(cost)


def test_reasoning_and_tool_calls_of_such_a_stream_reach_a_messages_client(
    box: ResponsesBox,
) -> None:
    """The pieces add up: reasoning to one thinking block, two calls' argument pieces (the
    second call's header sent first, no index on its pieces) to two whole tool_use inputs."""
    from tests.fakes.compatible_wire import BASE, DONE, chunk, event

    def call(index: int | None, call_id: str | None, name: str | None, args: str) -> Any:
        piece: dict[str, Any] = {"function": {"arguments": args}}
        if index is not None:
            piece["index"] = index
        if call_id:
            piece |= {"id": call_id, "type": "function"}
        if name:
            piece["function"]["name"] = name
        return {"tool_calls": [piece]}

    deltas = [{"role": "assistant", "reasoning_content": "Two cities, "},
              {"reasoning_content": "two calls."},
              call(0, "call_a", "weather", '{"city": '), call(0, None, None, '"Oslo"}'),
              call(None, "call_b", "weather", '{"city": "Li'),
              call(None, None, None, 'ma"}')]  # fmt: skip
    body = [event(chunk(delta)) for delta in deltas] + [event(chunk({}, "tool_calls"))]
    body += [event(BASE | {"choices": [], "usage": USAGE}), DONE]
    email, key = box.new_key()
    box.openai_fake.push(Reply(raw=body))
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    message = box.client(key).messages.create(
        model="compat/some-model", max_tokens=300,
        tools=[{"name": "weather", "input_schema": schema}],
        messages=[{"role": "user", "content": "Oslo and Lima?"}],
    )  # fmt: skip
    blocks = [(b.type, getattr(b, "thinking", None) or getattr(b, "input", None))
              for b in message.content]  # fmt: skip
    assert blocks == [("thinking", "Two cities, two calls."), ("tool_use", {"city": "Oslo"}),
                      ("tool_use", {"city": "Lima"})]  # fmt: skip
    assert message.stop_reason == "tool_use"
    assert only_row(box, email)["estimated"] == 0
