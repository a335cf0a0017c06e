"""An upstream event's type, which the pass-through paths (Messages to an `anthropic` provider,
Responses to a `--responses-api` one) write as the client's `event:` line: one holding a line
end (JSON's `\\n` or `\\r` in the data's `type`, or in an `event:` name) would end that line
and the event early, and what follows would be read by the client as events of their own (an
upstream writing into the client's stream past the box); one holding half a surrogate pair
(JSON's `\\ud800`) cannot be written at all and broke the stream (a free failure for an answer
the provider made). Such an event, whose type no API has, is left out; the rest of the stream is
relayed and charged as any. A long or non-ASCII name stays one line and passes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.hostile_upstream import SSE, Act, HostileUpstream, responses_stream
from tests.hostile.conftest import HostileBox, stream_of

pytestmark = pytest.mark.timeout(60)
COST = 7 * 1000 + 3 * 2000  # the streams' 7 input tokens at 1 USD a million, 3 output at 2
INJECTED = '{"type": "injected"}'
TYPES = {
    "lf": f"ping\n\ndata: {INJECTED}\n\n",
    "cr": f"ping\r\rdata: {INJECTED}\r\r",
    "surrogate": "ping\ud800",
}
PLAIN = {"long": "x" * 2000, "non-ascii": "pïng-事件"}  # (under the box's 4,096-byte event limit)


def with_event(kind: str, type_: str) -> list[bytes]:
    """The provider's stream with one more event (of type `type_`) after its second one."""
    writes = responses_stream() if kind == "hr" else stream_of(kind)
    extra = {"type": type_, "sequence_number": 99} if kind == "hr" else {"type": type_}
    event = b"data: " + json.dumps(extra).encode() + b"\n\n"
    return [*writes[:2], event, *writes[2:]]


def client_events(text: str) -> list[tuple[str | None, str]]:
    """The (event name, data) pairs a client reads (SSE rules: CR, LF, CRLF end lines)."""
    out, name, data = [], None, []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            if data:
                out.append((name, "\n".join(data)))
            name, data = None, []
        elif line.startswith("event:"):
            name = line.removeprefix("event:").removeprefix(" ")
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").removeprefix(" "))
    return out


def stream_call(box: HostileBox, key: str, kind: str) -> str:
    body: dict[str, Any] = {"model": f"{kind}/m", "stream": True}
    if kind == "hr":
        body["input"] = "hi"
        path = "/v1/responses"
    else:
        body |= {"max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
        path = "/v1/messages"
    with box.http(key) as client:
        answer = client.post(path, json=body)
    assert answer.status_code == 200, answer.text[:500]
    return answer.text


@pytest.mark.parametrize("kind", ["ha", "hr"])
@pytest.mark.parametrize("case", list(TYPES))
def test_an_event_type_that_would_break_the_line_is_left_out(
    box: HostileBox, hostile: HostileUpstream, kind: str, case: str
) -> None:
    email, key = box.new_user("10")
    hostile.push(Act(200, with_event(kind, TYPES[case]), SSE))
    events = client_events(stream_call(box, key, kind))
    for name, data in events:  # each event one JSON object whose type is its name
        assert json.loads(data)["type"] == name, (name, data)
    names = [name for name, _ in events]
    assert names[-1] == ("message_stop" if kind == "ha" else "response.completed"), names
    assert not any(name and name.startswith("ping") for name in names), names
    row = box.last_row(email)
    assert (row["status"], row["cost_nanos"]) == ("ok", COST), row


@pytest.mark.parametrize("kind", ["ha", "hr"])
@pytest.mark.parametrize("case", list(PLAIN))
def test_a_long_or_non_ascii_event_type_is_relayed_on_one_line(
    box: HostileBox, hostile: HostileUpstream, kind: str, case: str
) -> None:
    email, key = box.new_user("10")
    hostile.push(Act(200, with_event(kind, PLAIN[case]), SSE))
    events = client_events(stream_call(box, key, kind))
    for name, data in events:
        assert json.loads(data)["type"] == name, (name, data)
    assert PLAIN[case] in [name for name, _ in events]
    assert box.last_row(email)["cost_nanos"] == COST
