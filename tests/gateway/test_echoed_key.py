"""An upstream that echoes the operator's provider key in an error it sends with a 200 (an
error event inside a stream, before or after content, or an `error` object in a JSON body):
the key is masked in what the client sees, the server log and the stored usage row, as it is
for an error status."""

from __future__ import annotations

import json

import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, Box, BoxFactory

pytestmark = pytest.mark.timeout(60)
HELLO = [{"role": "user", "content": "Say hello"}]
# No well-known prefix and no digit: only the key itself tells it is one.
SECRET = "operatorsecretkeywithoutanydigitsatall"
ECHO = {"message": f"Incorrect API key provided: Bearer {SECRET}", "type": "auth"}


def chunk(content: str) -> bytes:
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": None}
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "choices": [choice]}
    return f"data: {json.dumps(body)}\n\n".encode()


ERROR_EVENT = f"data: {json.dumps({'error': ECHO})}\n\n".encode()


@pytest.fixture
def box(box_factory: BoxFactory) -> Box:
    """A box of its own for each test: the log and usage rows searched are its alone."""
    return box_factory(keys=(SECRET,), gateway={"max_retries": 0})


def seen(box: Box, answer: bytes) -> str:
    rows = box.query("SELECT upstream_error FROM usage_record")
    return answer.decode() + box.server.log_text() + str(rows)


@pytest.mark.parametrize(
    "raw", [[chunk("one "), ERROR_EVENT], [ERROR_EVENT]], ids=["after-content", "first"]
)
def test_an_error_event_echoing_the_key_never_shows_it(
    box: Box, fake: FakeOpenAI, raw: list[bytes]
) -> None:
    _, key = box.new_user("1")
    fake.push(Reply(raw=raw))
    body = {"model": MODEL, "messages": HELLO, "stream": True}
    with box.http(key) as http:
        answer = http.post("/v1/chat/completions", json=body)
    assert b"Incorrect API key provided" in answer.content
    assert SECRET not in seen(box, answer.content)


def test_an_error_object_in_a_200_body_echoing_the_key_never_shows_it(
    box: Box, fake: FakeOpenAI
) -> None:
    _, key = box.new_user("1")
    fake.push(Reply(raw=[json.dumps({"error": ECHO}).encode()], content_type="application/json"))
    with box.http(key) as http:
        answer = http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
    assert answer.status_code == 502
    assert b"Incorrect API key provided" in answer.content
    assert SECRET not in seen(box, answer.content)
