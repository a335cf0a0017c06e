"""A large body of many small items (within the body limit) is parsed, checked and translated
off the event loop: one such call held every other request of the box for seconds, and a $0
account's 402 (or an unknown model's 404) came only after all of it, so it cost its sender
nothing. Here a big call of a $0 account is sent whole; once the box has read every byte of it
(the kernel holds none for it: tests/ports.py), a small chat call of another account is made:
it is answered while the big one is still being worked on, before the big one's 402. On the
loop, the small call waited for the whole of the big one's work, which answered first."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest

from codelace_box.gateway.body_work import OFF_LOOP_BODY_BYTES
from codelace_box.jsonwire import dumps
from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway.conftest import MODEL, Box, BoxFactory
from tests.ports import until_read

ITEMS = 150_000  # one-word messages: about 4.5 MiB (chat: 8 MiB), a second or more of work here
ROUTES: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": ("/v1/chat/completions", {"model": MODEL}),
    "messages": ("/v1/messages", {"model": MODEL, "max_tokens": 100}),
    "responses": ("/v1/responses", {"model": MODEL}),
}


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    return box_factory()


def big_body(route: str, count: int = ITEMS, **extra: Any) -> bytes:
    """A chat body's messages are text parts: its checks of plain messages took less than the
    other routes' translations, and the small call's margin was thinnest there (big answers
    from 0.4 s, small ones up to 0.7 s, on a loaded machine); in parts (8 MiB, under the
    default body limit) it took 2 s or more there."""
    fields = ROUTES[route][1]
    text: Any = [{"type": "text", "text": "hi"}] if route == "chat" else "hi"
    items = [{"role": "user", "content": text}] * count
    return dumps({**fields, ("input" if route == "responses" else "messages"): items, **extra})


class BigCall:
    """A request sent whole on a socket of its own; its answer read on a thread, `answered`
    set as its first bytes come."""

    def __init__(self, box: Box, path: str, key: str, body: bytes) -> None:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            f"x-api-key: {key}\r\nanthropic-version: 2023-06-01\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        self.sock = socket.create_connection(("127.0.0.1", box.server.port), timeout=120)
        self.sock.sendall(head.encode() + body)
        self.answered = threading.Event()
        self.answer = b""
        self.reader = threading.Thread(target=self._read)
        self.reader.start()

    def _read(self) -> None:
        while chunk := self.sock.recv(65536):
            self.answered.set()
            self.answer += chunk

    def status(self) -> int:
        self.reader.join(120)
        self.sock.close()
        return int(self.answer.split(b" ", 2)[1])


@pytest.mark.parametrize("route", [*ROUTES, "count_tokens"])
def test_a_small_call_is_answered_while_a_large_body_is_worked_on(
    box: Box, fake: FakeOpenAI, route: str
) -> None:
    """(count_tokens toward an `openai` provider: estimated, free, so a 200 even for $0.)"""
    _, broke = box.new_user("0")
    _, paying = box.new_user("10")
    count = route == "count_tokens"
    path = "/v1/messages/count_tokens" if count else ROUTES[route][0]
    big = BigCall(box, path, broke, big_body("messages" if count else route))
    until_read(box.server.port)  # the box has every byte of it: its work begins
    with box.http(paying) as http:
        small = http.post("/v1/chat/completions", json={
            "model": MODEL, "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
    answered_first = big.answered.is_set()
    assert small.status_code == 200, small.text[:300]
    assert big.status() == (200 if count else 402), big.answer[:300]
    assert not answered_first, "the small call waited for the large body's work"


def test_each_route_answers_a_large_body_written_off_the_loop(box: Box, fake: FakeOpenAI) -> None:
    """What a thread worked out and wrote for the upstream is what the loop did: the calls go
    through whole (a stream too), each upstream body with every message, and count_tokens
    counts them."""
    _, key = box.new_user("10")
    items = OFF_LOOP_BODY_BYTES // 25  # {"role":"user","content":"hi"}, 31 bytes each
    headers = {"authorization": f"Bearer {key}", "anthropic-version": "2023-06-01"}
    bodies = {route: big_body(route, items) for route in ROUTES}
    bodies["chat stream"] = big_body("chat", items, stream=True)
    assert all(len(body) >= OFF_LOOP_BODY_BYTES for body in bodies.values())
    with box.http() as http:
        for route, body in bodies.items():
            answer = http.post(ROUTES[route.split()[0]][0], content=body, headers=headers)
            assert answer.status_code == 200, (route, answer.text[:300])
            assert ("data: [DONE]" in answer.text) == route.endswith("stream"), route
            sent = [m for m in fake.requests[-1].body["messages"] if m["role"] == "user"]
            assert len(sent) == items, route
            assert sent[-1]["content"] in ("hi", [{"type": "text", "text": "hi"}]), route
        path = "/v1/messages/count_tokens"
        count = http.post(path, content=bodies["messages"], headers=headers)
    assert count.status_code == 200, count.text[:300]
    assert count.json()["input_tokens"] >= items
