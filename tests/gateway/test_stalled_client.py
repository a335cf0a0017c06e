"""A client that stops reading its stream (its connection open, nothing taken): the box lets it
go after SEND_TIMEOUT, as a client that left, instead of holding the call, its hold and its
upstream connection for the response timeout (an hour)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, Box, BoxFactory

pytestmark = pytest.mark.timeout(90)
SEND_TIMEOUT_SEC = 2
BIG_OUTPUT = 1_500_000  # tokens: room for megabytes of stream before the output cap


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    timeouts = {"CODELACE_SANIC_SEND_TIMEOUT": str(SEND_TIMEOUT_SEC)}
    timeouts["CODELACE_SANIC_REQUEST_TIMEOUT"] = "4"  # the checks run every 2 s
    started = box_factory(env=timeouts)
    started.cli("models", "set", MODEL, "--max-output-tokens", str(BIG_OUTPUT))
    time.sleep(1.2)  # the catalog change is seen within a second
    return started


def open_unread_stream(box: Box, key: str) -> socket.socket:
    """A streamed completion asked on a raw socket whose answer is never read."""
    body = json.dumps(
        {"model": MODEL, "stream": True, "max_tokens": BIG_OUTPUT,
         "messages": [{"role": "user", "content": "talk"}]}
    ).encode()  # fmt: skip
    client = socket.create_connection(("127.0.0.1", box.server.port))
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: box\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    client.sendall(head.encode() + body)
    return client


def test_a_client_that_stops_reading_is_let_go_and_charged(box: Box, fake: FakeOpenAI) -> None:
    email, key = box.new_user("100")
    start = box.balance(email)[0]
    fake.push(Reply(endless="x" * 1000, endless_limit=30_000))  # 30 MB, more than buffers hold
    client = open_unread_stream(box, key)
    try:
        deadline = time.monotonic() + 30
        while box.balance(email)[1] == 0:  # the call is admitted: its hold is open
            assert time.monotonic() < deadline, "the call was never admitted"
            time.sleep(0.05)
        # Nothing read: the box's writes stall; after SEND_TIMEOUT (checked every half of the
        # shortest timeout) it lets the client go, reads the upstream on and settles the call.
        rows: list[tuple[str, int]] = []
        deadline = time.monotonic() + 40
        while not rows:
            assert time.monotonic() < deadline, "a client reading nothing kept its call open"
            rows = box.query("SELECT status, cost_nanos FROM usage_record WHERE user_id = "
                             '(SELECT id FROM "user" WHERE email = ?)', email)  # fmt: skip
            time.sleep(0.2)
    finally:
        client.close()
    [(status, cost)] = rows
    assert status in ("ok", "abandoned") and cost > 0
    assert box.balance(email) == (start - cost, 0)  # charged, and the hold released
