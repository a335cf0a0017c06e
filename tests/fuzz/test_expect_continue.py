"""`Expect: 100-continue` (curl sends it for a body over 1 MB) on raw sockets. A request refused
before its body is read (a missing key, no such route, a method the route does not take) is
answered at once, without the `100 Continue` that asks the client to upload the body (so is
one whose Content-Length is past its route's own smaller limit, a sign-in's 256 KiB): Sanic
sent one ahead of the refusal, and the client uploaded up to max_body_bytes for nothing (curl
stops sending on an error without it, RFC 9110 10.1.1), and the answer says `connection:
close` (the body never sent cannot be told from a next request). A request the box reads
still gets its `100 Continue`."""

from __future__ import annotations

import json
import re
import socket

import pytest

from tests.fuzz.conftest import CHAT_MODEL, FuzzBox

pytestmark = pytest.mark.timeout(60)
LENGTH = 900_000  # within the fuzz box's max_body_bytes


def head_of(method: bytes, path: bytes, *fields: bytes) -> bytes:
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: box", b"Content-Type: application/json",
             b"Content-Length: %d" % LENGTH, b"Expect: 100-continue", *fields]  # fmt: skip
    return b"\r\n".join(lines) + b"\r\n\r\n"


def read_answer(client: socket.socket) -> tuple[bytes, bytes]:
    """The head and body of one answer (by its Content-Length), the connection left open as
    curl leaves it until it has read the answer."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += client.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length: (\d+)\r?$", head)
    assert length, head
    while len(body) < int(length.group(1)):
        body += client.recv(65536)
    return head, body


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        (b"POST", b"/v1/chat/completions", 401),
        (b"POST", b"/v1/messages", 401),
        (b"POST", b"/v1/no-such-route", 404),
        (b"POST", b"/healthz", 405),
        (b"POST", b"/api/v1/auth/otp/request", 413),  # over the 256 KiB of a small route
        (b"PATCH", b"/api/v1/auth/me", 413),
    ],
)
def test_a_refusal_before_the_body_asks_for_no_body(
    box: FuzzBox, method: bytes, path: bytes, status: int
) -> None:
    with socket.create_connection(("127.0.0.1", box.server.port), timeout=5) as client:
        client.sendall(head_of(method, path))  # and no body: curl waits for the go-ahead
        head, body = read_answer(client)  # at once, not a body timeout's 408 later
    assert head.startswith(b"HTTP/1.1 %d " % status), head
    assert re.search(rb"(?im)^connection: close\r?$", head), head
    assert re.search(rb"(?im)^x-request-id: req_[0-9a-f]{24}\r?$", head), head
    assert json.loads(body)["error"]["message"]


def test_a_request_the_box_reads_gets_its_continue(box: FuzzBox) -> None:
    body = {"model": CHAT_MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    data = json.dumps(body).encode().ljust(LENGTH)
    key = b"Authorization: Bearer " + box.key.encode()
    with socket.create_connection(("127.0.0.1", box.server.port), timeout=15) as client:
        client.sendall(head_of(b"POST", b"/v1/chat/completions", key, b"Connection: close"))
        assert client.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        client.sendall(data)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
