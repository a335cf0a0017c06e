"""An Anthropic upstream's error words with terminal controls in them (its `type` and its
`message`, perhaps echoing the user's input) reach a Messages client (Claude Code prints them)
as visible escapes, never raw: an error status, and a streamed error event before or after
content (tests/gateway/test_upstream_error_controls.py has the other routes)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.anthropic.conftest import MODEL, AnthropicBox
from tests.fakes.anthropic_upstream import FakeAnthropic, Reply
from tests.support import TLS

KIND = "odd\x1b[2J\u202ekind"
WORDS = "bad\x1b]0;owned\x07 \x9b31m \u2066iso end"
UNSAFE = set("\x1b\x07\x9b\u202e\u2066")


def messages_call(box: AnthropicBox, stream: bool) -> httpx.Response:
    _, client = box.new_user()
    body = {"model": MODEL, "max_tokens": 50, "stream": stream,
            "messages": [{"role": "user", "content": "story"}]}  # fmt: skip
    headers = {"x-api-key": client.api_key, "anthropic-version": "2023-06-01"}
    return httpx.post(box.server.base_url + "/v1/messages", json=body, headers=headers,
                      verify=TLS, timeout=30)  # fmt: skip


def error_of(answer: httpx.Response) -> dict[str, str]:
    """The `error` object a client reads: the body's, or the stream's error event's."""
    if not answer.headers["content-type"].startswith("text/event-stream"):
        return dict(answer.json()["error"])
    events = [json.loads(line[5:]) for line in answer.text.splitlines() if line.startswith("data:")]
    (error,) = [event["error"] for event in events if event.get("type") == "error"]
    return dict(error)


@pytest.mark.parametrize(
    "reply",
    [
        Reply.error(400, KIND, WORDS),
        Reply(text="Once upon a time", error_after_deltas=0, error_type=KIND, error_message=WORDS),
        Reply(
            text="Once upon a time",
            error_after_deltas=2,
            error_type=KIND,
            error_message=WORDS,
            delay_sec=0.05,
        ),
    ],
    ids=["status", "event-first", "event-after-content"],
)
def test_an_anthropic_error_reaches_a_messages_client_without_raw_controls(
    box: AnthropicBox, fresh_fake: FakeAnthropic, reply: Reply
) -> None:
    fresh_fake.script(reply)
    error = error_of(messages_call(box, stream=reply.status == 200))
    said = " ".join(error.values())
    assert "\\x1b]0;owned" in said, error  # the words are there, the controls visible
    assert not UNSAFE & set(said), error
