"""HTTP/1.0 clients on raw sockets (curl --http1.0, Python's http.client set to 1.0, a proxy
speaking 1.0 upstream): RFC 9112 forbids Transfer-Encoding in an answer to an HTTP/1.0 request
(a 1.0 client knows no chunked coding: it reads the chunk sizes as part of the stream), so a
stream of unknown length ends with the connection; and RFC 9110 has a server ignore an
HTTP/1.0 request's `Expect: 100-continue` (to a 1.0 client a `100 Continue` is the answer)."""

from __future__ import annotations

import json
import re
import socket

import pytest

from tests.fuzz.conftest import CHAT_MODEL, CLAUDE_MODEL, FuzzBox

pytestmark = pytest.mark.timeout(60)
HI = [{"role": "user", "content": "hi"}]
STREAMS = {
    "/v1/chat/completions": {"model": CHAT_MODEL, "messages": HI, "max_tokens": 5},
    "/v1/messages": {"model": CLAUDE_MODEL, "messages": HI, "max_tokens": 5},
    "/v1/responses": {"model": CHAT_MODEL, "input": "hi", "max_output_tokens": 5},
}
LAST_EVENT = {
    "/v1/chat/completions": b"data: [DONE]\n\n",
    "/v1/messages": b'data: {"type":"message_stop"}\n\n',
    "/v1/responses": b"",  # (its last event's data is long: checked as an event below)
}


def head_of(path: str, data: bytes, key: str, *fields: bytes) -> bytes:
    """An HTTP/1.0 POST's head for `data` (no Host: 1.0 has none)."""
    lines = [b"POST " + path.encode() + b" HTTP/1.0", b"Content-Type: application/json",
             b"Content-Length: %d" % len(data), b"Authorization: Bearer " + key.encode(),
             *fields]  # fmt: skip
    return b"\r\n".join(lines) + b"\r\n\r\n"


def read_until_closed(client: socket.socket) -> bytes:
    answer = b""
    while data := client.recv(65536):
        answer += data
    return answer


@pytest.mark.parametrize("keep_alive", [False, True], ids=["plain", "keep-alive"])
@pytest.mark.parametrize("path", list(STREAMS))
def test_a_stream_to_an_http10_client_is_not_chunked_and_ends_with_the_connection(
    box: FuzzBox, path: str, keep_alive: bool
) -> None:
    data = json.dumps(STREAMS[path] | {"stream": True}).encode()
    extra = [b"Connection: keep-alive"] if keep_alive else []
    with socket.create_connection(("127.0.0.1", box.server.port), timeout=15) as client:
        client.sendall(head_of(path, data, box.key, *extra) + data)
        answer = read_until_closed(client)  # the stream's end is the connection's
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert not re.search(rb"(?im)^transfer-encoding:", head), head
    assert re.search(rb"(?im)^connection: close\r?$", head), head
    assert re.search(rb"(?im)^x-request-id: req_[0-9a-f]{24}\r?$", head), head
    assert body.startswith((b"data: ", b"event: ")), body[:100]  # no chunk size before it
    assert body.endswith(b"\n\n") and body.endswith(LAST_EVENT[path]), body[-200:]
    for event in body.strip(b"\n").split(b"\n\n"):  # each an SSE event, nothing between
        assert all(line.startswith((b"data: ", b"event: ", b":")) for line in event.split(b"\n"))


def test_an_http10_requests_expect_continue_is_ignored(box: FuzzBox) -> None:
    """No `100 Continue` (an HTTP/1.0 client takes it for the answer): the box waits for the
    body, which such a client sends after a short wait, and answers it."""
    data = json.dumps(STREAMS["/v1/chat/completions"]).encode()
    head = head_of("/v1/chat/completions", data, box.key, b"Expect: 100-continue")
    with socket.create_connection(("127.0.0.1", box.server.port), timeout=15) as client:
        client.sendall(head)
        client.settimeout(1.0)
        with pytest.raises(TimeoutError):
            client.recv(65536)  # nothing before the body is sent
        client.settimeout(15)
        client.sendall(data)
        answer = read_until_closed(client)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["object"] == "chat.completion"
