"""Request targets in absolute form (RFC 9112 3.2.2: what a client sends to a proxy, and a
server must take), on raw sockets. One without a path (`GET http://host HTTP/1.1`) is the root
path (RFC 9110 4.2.3); Sanic's request had none, its router and then the error handler raised
on it, and the client got a 500 in plain text ("An error occurred while handling an error")
on a connection kept alive, the log a traceback."""

from __future__ import annotations

import json
import re
import socket

import pytest

from tests.fuzz.conftest import FuzzBox

pytestmark = pytest.mark.timeout(60)
NO_PATH = [b"http://box", b"http://box?x=1", b"https://box", b"http://user@box", b"http://[::1]"]


def exchange(box: FuzzBox, method: bytes, target: bytes) -> tuple[bytes, bytes]:
    """Head and body of the answer to a request for `target` (Connection: close)."""
    request = method + b" " + target + b" HTTP/1.1\r\nHost: box\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", box.server.port), timeout=15) as client:
        client.sendall(request)
        answer = b""
        while data := client.recv(65536):
            answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    assert re.search(rb"(?im)^x-request-id: req_[0-9a-f]{24}\r?$", head), head
    return head, body


@pytest.mark.parametrize("target", NO_PATH)
def test_an_absolute_target_without_a_path_is_the_root(box: FuzzBox, target: bytes) -> None:
    head, body = exchange(box, b"GET", target)
    assert head.startswith(b"HTTP/1.1 200 "), head + body[:200]
    assert b"<html" in body.lower()  # the portal's page, at /


@pytest.mark.parametrize("target", NO_PATH)
def test_a_refusal_of_an_absolute_target_without_a_path_is_the_envelope(
    box: FuzzBox, target: bytes
) -> None:
    tracebacks = box.server.log_text().count("Traceback")
    head, body = exchange(box, b"DELETE", target)
    assert head.startswith(b"HTTP/1.1 405 "), head + body[:200]
    assert json.loads(body)["error"]["code"] == "method_not_allowed"
    assert box.server.log_text().count("Traceback") == tracebacks


def test_an_absolute_target_with_a_path_is_that_path(box: FuzzBox) -> None:
    head, body = exchange(box, b"GET", b"http://elsewhere.example/healthz?x=1")
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert json.loads(body) == {"status": "ok"}
