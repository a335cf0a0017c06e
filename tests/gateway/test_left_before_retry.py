"""A client that leaves while the upstream's first attempt is still running, which then fails
(a 500 on one key): the box starts no new attempt on another key for nobody. It did, and the
answer nobody read was charged to the user as `abandoned`: work the upstream began only after
the client was gone (a failed call costs nothing; only work already under way when the client
left is read on and charged)."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, Box, BoxFactory

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    return box_factory(keys=("sk-fake-key-0001", "sk-fake-key-0002"))


def request_bytes(key: str, path: str, stream: bool) -> bytes:
    body: dict[str, object] = {"model": MODEL, "stream": stream, "max_tokens": 50,
                               "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: box\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_no_new_attempt_starts_once_the_client_left(
    box: Box, fake: FakeOpenAI, path: str, stream: bool
) -> None:
    email, key = box.new_user()
    start = box.balance(email)[0]
    fake.push(Reply(status=500, delay_before=1.0), Reply(content="nobody reads this"))
    with socket.create_connection(("127.0.0.1", box.server.port), timeout=10) as client:
        client.sendall(request_bytes(key, path, stream))
        deadline = time.monotonic() + 10
        while not fake.requests:  # the first attempt is under way
            assert time.monotonic() < deadline, "the call never reached the upstream"
            time.sleep(0.02)
    sql = (
        "SELECT status, cost_nanos FROM usage_record "
        'WHERE user_id = (SELECT id FROM "user" WHERE email = ?)'
    )
    deadline = time.monotonic() + 15
    while not (rows := box.query(sql, email)):
        assert time.monotonic() < deadline, "the call was never settled"
        time.sleep(0.05)
    time.sleep(0.5)  # a retry (the bug) would have gone out by now
    assert len(fake.requests) == 1, "a new attempt went upstream for a client that left"
    [(_, cost)] = rows
    assert int(cost) == 0
    assert box.balance(email) == (start, 0)
