"""A client that asked for no persistent connection (`Connection: close`, HTTP/1.0) and shuts
its write side once its request is sent (TCP FIN: shutdown(SHUT_WR), as netcat, fortio
-halfclose and some proxies do) is still reading: it gets its whole answer, streamed or not.
The box took the FIN for a client that left: Sanic's protocol has no eof_received, so asyncio
closed the connection and the handler was cancelled: no answer (the call abandoned; charged
when the FIN came after the upstream call began). A keep-alive client's FIN still means it
left (the SDKs give up that way): that stays as it was."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, Box, BoxFactory

pytestmark = pytest.mark.timeout(60)
# Let go at once: a box waiting for bytes that cannot come closes at Sanic's REQUEST_TIMEOUT
# (60 s); 1.5 s, the bound before, left a loaded 2-core machine little room for one stall.
LET_GO_WITHIN_SEC = 10


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    return box_factory()


def half_closed_call(
    box: Box, key: str, body: dict[str, object], version: str, connection: str = "close"
) -> bytes:
    """A completion asked on a raw socket whose write side is shut once the request is sent;
    everything the box sent back until it closed."""
    data = json.dumps({"model": MODEL, **body}).encode()
    field = f"Connection: {connection}\r\n" if connection else ""  # HTTP/1.0: close by default
    head = (
        f"POST /v1/chat/completions HTTP/{version}\r\nHost: box\r\n{field}"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", box.server.port), timeout=20) as client:
        client.sendall(head.encode() + data)
        client.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := client.recv(65536):
            received += chunk
    return received


def completion_request(key: str, body: dict[str, object], connection: str) -> bytes:
    """One chat completion request, HTTP/1.1, as bytes on the wire."""
    data = json.dumps({"model": MODEL, **body}).encode()
    field = f"Connection: {connection}\r\n" if connection else ""
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: box\r\n{field}"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


def _usage_status(box: Box, email: str) -> str:
    sql = 'SELECT status FROM usage_record WHERE user_id = (SELECT id FROM "user" WHERE email = ?)'
    deadline = time.monotonic() + 15
    while not (rows := box.query(sql, email)):
        assert time.monotonic() < deadline, "the call was never settled"
        time.sleep(0.05)
    [(status,)] = rows
    return str(status)


@pytest.mark.parametrize(("version", "connection"), [("1.1", "close"), ("1.0", "close"),
                                                   ("1.0", "")])  # fmt: skip
def test_a_half_closed_client_gets_its_whole_answer(
    box: Box, fake: FakeOpenAI, version: str, connection: str
) -> None:
    email, key = box.new_user()
    fake.push(Reply(content="answered after the FIN", delay_before=0.5))
    body = {"messages": [{"role": "user", "content": "hi"}]}
    received = half_closed_call(box, key, body, version, connection)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), received[:200]
    answer = json.loads(body)
    assert answer["choices"][0]["message"]["content"] == "answered after the FIN"
    assert _usage_status(box, email) == "ok"


def test_a_half_closed_client_gets_its_whole_stream(box: Box, fake: FakeOpenAI) -> None:
    email, key = box.new_user()
    pieces = [f"piece{n} " for n in range(20)]
    fake.push(Reply(pieces=pieces, piece_delay=0.05, delay_before=0.3))
    body = {"stream": True, "messages": [{"role": "user", "content": "hi"}]}
    received = half_closed_call(box, key, body, "1.1")
    head, _, stream = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), received[:200]
    text = stream.decode()
    for piece in pieces:
        assert f'"{piece}"' in text, f"{piece!r} never reached the client"
    assert "data: [DONE]" in text
    assert _usage_status(box, email) == "ok"


def test_a_keep_alive_clients_fin_still_means_it_left(box: Box, fake: FakeOpenAI) -> None:
    """A client that asked to keep the connection cannot send its next request after a FIN:
    it gave up (as the SDKs do on a timeout), and is let go at once, as before."""
    email, key = box.new_user()
    start = box.balance(email)
    fake.push(Reply(content="never seen", delay_before=0.5))
    body = {"messages": [{"role": "user", "content": "hi"}]}
    assert half_closed_call(box, key, body, "1.1", "keep-alive") == b""
    time.sleep(1.5)  # let go at admission or during its upstream call: no answer is made
    sql = (
        "SELECT status, cost_nanos FROM usage_record "
        'WHERE user_id = (SELECT id FROM "user" WHERE email = ?)'
    )
    rows = [tuple(row) for row in box.query(sql, email)]
    assert [status for status, _ in rows] in ([], ["abandoned"])
    # On a loaded machine the FIN may be read after the upstream call began: then the
    # abandoned call is charged as the SPEC says, and the balance moves by exactly that.
    assert box.balance(email) == (start[0] - sum(int(cost) for _, cost in rows), 0)


@pytest.mark.parametrize("sent", [b"", b"POST /v1/chat/completions HTTP/1.1\r\nHost: b", b"GET"])
def test_a_client_that_shuts_before_its_request_is_whole_is_let_go_at_once(
    box: Box, sent: bytes
) -> None:
    """Nothing, half a head or half a body, then the FIN: the box waits for no bytes that
    cannot come (the connection is closed at once, as before, not at a timeout)."""
    with socket.create_connection(("127.0.0.1", box.server.port), timeout=20) as client:
        client.sendall(sent)
        client.shutdown(socket.SHUT_WR)
        began = time.monotonic()
        assert client.recv(65536) == b""
        assert time.monotonic() - began < LET_GO_WITHIN_SEC
    time.sleep(0.2)
    assert "Traceback" not in box.server.log_text()


def test_a_client_that_shuts_before_its_body_is_whole_is_let_go_at_once(box: Box) -> None:
    _, key = box.new_user()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: box\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 500\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", box.server.port), timeout=20) as client:
        client.sendall(head.encode() + b'{"model": ')
        client.shutdown(socket.SHUT_WR)
        began = time.monotonic()
        received = b""
        while chunk := client.recv(65536):
            received += chunk
        assert time.monotonic() - began < LET_GO_WITHIN_SEC
    assert not received.startswith(b"HTTP/1.1 2"), received[:200]


@pytest.mark.parametrize("last", ["close", "keep-alive"])
def test_a_client_that_pipelines_then_half_closes_gets_every_answer(
    box: Box, fake: FakeOpenAI, last: str
) -> None:
    """Requests sent one behind the other (pipelined), then the FIN: the client is reading
    answers, it did not give up (an SDK that gives up has no request waiting behind the one in
    flight). The first request asked to keep the connection, so its FIN was taken for a client
    that left: no answer at all, the first call abandoned, the second never read."""
    email, key = box.new_user()
    fake.push(Reply(content="first answer", delay_before=0.5))
    fake.push(Reply(content="second answer", delay_before=0.3))
    body = {"messages": [{"role": "user", "content": "hi"}]}
    sent = completion_request(key, body, "") + completion_request(key, body, last)
    with socket.create_connection(("127.0.0.1", box.server.port), timeout=20) as client:
        client.sendall(sent)
        client.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := client.recv(65536):
            received += chunk
    assert received.count(b"HTTP/1.1 200") == 2, received[:300]
    assert b"first answer" in received and b"second answer" in received
    sql = 'SELECT status FROM usage_record WHERE user_id = (SELECT id FROM "user" WHERE email = ?)'
    assert sorted(status for (status,) in box.query(sql, email)) == ["ok", "ok"]
    assert box.balance(email)[1] == 0  # no hold left open
