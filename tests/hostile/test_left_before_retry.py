"""An Anthropic stream that opens, then fails with an error event before its content, after its
client left (the box: tests/hostile/conftest.py): the box starts no new attempt on the other
key for nobody; it did, and charged the user for the answer nobody read (`abandoned`). A failed
call costs nothing; only work under way when the client left is read on and charged."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.fakes.hostile_upstream import SSE, Act, HostileUpstream, anthropic_event
from tests.hostile.conftest import PATHS, ROUTES, HostileBox, settled_row, stream_of

pytestmark = pytest.mark.timeout(60)


def stream_request(key: str, route: str) -> bytes:
    body = {"model": "ha/m", "stream": True, "max_tokens": 100,
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    if route == "responses":
        body = {"model": "ha/m", "stream": True, "input": "hi"}
    data = json.dumps(body).encode()
    head = (
        f"POST {PATHS[route]} HTTP/1.1\r\nHost: box\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


@pytest.mark.parametrize("route", ROUTES)
def test_no_new_attempt_after_an_error_event_once_the_client_left(
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    overloaded = {"type": "overloaded_error", "message": "Overloaded"}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
               "content": [], "stop_reason": None, "stop_sequence": None,
               "usage": {"input_tokens": 7, "output_tokens": 1}}  # fmt: skip
    failed = Act(200, [anthropic_event({"type": "message_start", "message": message}), 0.2,
                       anthropic_event({"type": "error", "error": overloaded})], SSE)  # fmt: skip
    hostile.push(failed, Act(200, stream_of("ha"), SSE))
    with socket.create_connection(("127.0.0.1", box.server.port), timeout=10) as client:
        client.sendall(stream_request(key, route))
        deadline = time.monotonic() + 10
        while not hostile.seen:  # the first attempt is under way
            assert time.monotonic() < deadline, "the call never reached the upstream"
            time.sleep(0.01)
    row = settled_row(box, email)
    time.sleep(0.5)  # a retry (the bug) would have gone out by now
    assert len(hostile.seen) == 1, "a new attempt went upstream for a client that left"
    assert int(row["cost_nanos"]) == 0
    assert box.balance_nanos(email) == (start, 0)
