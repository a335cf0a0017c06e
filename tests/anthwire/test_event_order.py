"""/v1/messages to an `anthropic` provider: events the upstream sends after its message_delta
(a ping, an event type this code has never heard of) reach the client after it, in the order
they came, though the box holds message_delta back until the call is settled."""

from __future__ import annotations

import json

from tests.anthwire.conftest import MAX_TOKENS, MODEL, WireBox, cost_nanos
from tests.fakes import anthropic_wire as wire
from tests.fakes.hostile_upstream import SSE, Act, HostileUpstream

HELLO = [{"role": "user", "content": "hi"}]
FINAL = {"input_tokens": 10, "output_tokens": 3}


def _answer(*after_delta: dict[str, object]) -> list[dict[str, object]]:
    """A one-block answer with these events between its message_delta and message_stop."""
    delta = {"type": "message_delta", "usage": FINAL,
             "delta": {"stop_reason": "end_turn", "stop_sequence": None}}  # fmt: skip
    block = wire._block(0, {"type": "text", "text": ""}, wire._text("hey"))
    start = wire._start({"input_tokens": 10, "output_tokens": 1})
    return [start, *block, delta, *after_delta, {"type": "message_stop"}]


def test_events_after_message_delta_keep_their_place(
    box: WireBox, hostile: HostileUpstream
) -> None:
    events = _answer({"type": "ping"}, {"type": "future_event", "detail": {"n": 1}})
    email, key = box.new_user("5")
    hostile.push(Act(200, [wire.frame(event) for event in events], content_type=SSE))
    body = {"model": MODEL, "max_tokens": MAX_TOKENS, "messages": HELLO, "stream": True}
    with box.http(key) as http:
        text = http.post("/v1/messages", json=body, headers={"x-api-key": key}).text
    relayed = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    names = [line[7:] for line in text.splitlines() if line.startswith("event: ")]
    sent = json.loads(json.dumps(events))
    sent[0]["message"]["model"] = MODEL
    assert relayed == sent
    assert names == [event["type"] for event in sent]
    balance, held = box.balance_nanos(email)
    assert (5_000_000_000 - balance, held) == (cost_nanos(FINAL), 0)
