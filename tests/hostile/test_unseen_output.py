"""Upstream output that gives the client no byte: reasoning a Messages call asked to be left
unseen (`thinking.display: "omitted"`, "updates": Claude Code) translated from an `openai`
provider, and chunks with nothing to show on /v1/responses (an empty `content`, a role said
again). The relay reads them, but the client gets nothing while they come: the box's keep-alive
comments must still come as often as when the upstream is silent (a proxy in front of the box,
or the client itself, cuts a stream with no byte for its idle timeout), and the call settles
as any other."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.hostile_upstream import SSE, Act, HostileUpstream, chat_chunk, chat_stream
from tests.hostile.conftest import PATHS, HostileBox, paced

pytestmark = pytest.mark.timeout(60)
MESSAGES: dict[str, Any] = {"max_tokens": 500, "messages": [{"role": "user", "content": "hi"}]}
CASES = {  # route, what the request adds, the upstream's chunk that shows the client nothing
    "omitted": ("messages", MESSAGES | {"thinking": {"type": "adaptive", "display": "omitted"}},
                {"reasoning_content": "step "}),
    "updates": ("messages", MESSAGES | {"thinking": {"type": "adaptive", "display": "updates"}},
                {"reasoning_content": "step "}),
    "responses": ("responses", {"input": "hi"}, {"content": ""}),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_output_that_shows_nothing_still_gets_keepalive_comments(
    box: HostileBox, hostile: HostileUpstream, case: str
) -> None:
    """Such chunks every 0.1 s for 1.5 s (five keep-alive intervals of 0.3 s, inside the 1 s
    read timeout between bytes), then the answer: each was taken for a byte sent, so the
    client got no keep-alive all that time (a long reasoning phase of DeepSeek or gpt-oss
    behind Claude Code: minutes with no byte)."""
    email, key = box.new_user("10")
    route, asked, delta = CASES[case]
    asked = {"model": "ho/m", "stream": True, **asked}
    role, *answer = chat_stream(("Hello",))
    hostile.push(Act(200, [role, *paced([chat_chunk(delta)] * 15, 0.1), *answer], SSE))
    with box.http(key) as client, client.stream("POST", PATHS[route], json=asked) as sent:
        assert sent.status_code == 200, sent.read()
        raw = sent.read()
    assert b"step" not in raw and b'"Hello"' in raw, raw
    assert raw.count(b": keep-alive\n\n") >= 2, raw
    last = b"message_stop" if route == "messages" else b"response.completed"
    assert raw.endswith(b"\n\n") and last in raw.rsplit(b"event: ", 1)[1], raw
    row = box.last_row(email)
    assert row["status"] == "ok" and 0 < row["cost_nanos"] <= row["hold_nanos"], row
