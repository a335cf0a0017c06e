"""An upstream's error words with terminal controls in them (a hostile upstream's, or one
echoing the user's input): ESC, the other C0 controls but tab and newline, the C1 controls
and the bidirectional overrides reach the client as visible escapes (`\\x1b`, `\\u202e`, as
the box's log writes them), never raw, so a CLI client that prints the error is not driven by
them; on chat, Messages and Responses calls, an error status (4xx, 5xx) or a streamed error
event alike."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, Box, BoxFactory

pytestmark = pytest.mark.timeout(60)
HELLO = [{"role": "user", "content": "Say hello"}]
HOSTILE = "bad\x1b[2J\x1b]0;owned\x07 csi\x9b31m \u202eright\u2066 iso\x00 tab\tnl\nend"
UNSAFE = set("\x1b\x07\x9b\u202e\u2066\x00")
NATIVE = "oair/gpt-test"  # a `--responses-api` provider: /v1/responses relayed natively
ROUTES = {
    "chat": ("/v1/chat/completions", {"model": MODEL, "messages": HELLO}),
    "messages": ("/v1/messages", {"model": MODEL, "messages": HELLO, "max_tokens": 50}),
    "responses": ("/v1/responses", {"model": MODEL, "input": "Say hello"}),
    "native-responses": ("/v1/responses", {"model": NATIVE, "input": "Say hello"}),
}


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory, fake: FakeOpenAI) -> Box:
    started = box_factory(gateway={"max_retries": 0})
    started.cli("providers", "add", "oair", "--kind", "openai", "--responses-api",
                "--base-url", fake.base_url, "--key", "sk-fake-key-0002")  # fmt: skip
    started.cli("models", "set", NATIVE, "--input-per-1m", "3", "--output-per-1m", "15")
    started.until_served(NATIVE)
    return started


def strings(value: Any) -> list[str]:
    """Every string in a JSON value (its keys too)."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return [value] if isinstance(value, str) else []


def said(content: bytes) -> str:
    """What a client reads out of an answer: a JSON body's strings, or a stream's events'."""
    text = content.decode()
    try:
        return "\n".join(strings(json.loads(text)))
    except ValueError:
        lines = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
        events = [json.loads(line) for line in lines if line.startswith("{")]
        return "\n".join(s for event in events for s in strings(event))


def chunk(content: str) -> bytes:
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": None}
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "choices": [choice]}
    return f"data: {json.dumps(body)}\n\n".encode()


def ask(box: Box, route: str, stream: bool = False) -> tuple[int, str]:
    _, key = box.new_user("1")
    path, body = ROUTES[route]
    with box.http(key) as http:
        answer = http.post(path, json={**body, "stream": stream})
    return answer.status_code, said(answer.content)


def seen_safely(text: str) -> None:
    assert "\\x1b[2J" in text  # the words are still there, the controls visible
    assert "\\u202eright" in text
    assert not UNSAFE & set(text)


@pytest.mark.parametrize("status", [400, 500])
@pytest.mark.parametrize("route", list(ROUTES))
def test_an_upstream_error_status_reaches_the_client_without_raw_controls(
    box: Box, fake: FakeOpenAI, route: str, status: int
) -> None:
    fake.push(Reply(status=status, error={"message": HOSTILE, "type": "invalid_request_error"}))
    answered, text = ask(box, route)
    assert answered >= 400
    seen_safely(text)
    assert "tab\tnl" in text  # tab and newline are no controls a terminal acts on


@pytest.mark.parametrize("before", [[], [chunk("one ")]], ids=["first", "after-content"])
@pytest.mark.parametrize("route", ["chat", "messages", "responses"])  # Chat Completions streams
def test_a_streamed_upstream_error_reaches_the_client_without_raw_controls(
    box: Box, fake: FakeOpenAI, route: str, before: list[bytes]
) -> None:
    event = f"data: {json.dumps({'error': {'message': HOSTILE, 'type': 'x'}})}\n\n".encode()
    fake.push(Reply(raw=[*before, event]))
    _, text = ask(box, route, stream=True)
    seen_safely(text)


def test_a_native_responses_error_event_reaches_the_client_without_raw_controls(
    box: Box, fake: FakeOpenAI
) -> None:
    event = {"type": "error", "code": "server_error", "message": HOSTILE, "sequence_number": 0}
    fake.push(Reply(raw=[f"event: error\ndata: {json.dumps(event)}\n\n".encode()]))
    _, text = ask(box, "native-responses", stream=True)
    seen_safely(text)
