"""/v1/messages to an `openai` provider: an answer the server ends with finish_reason "error"
(OpenRouter's, for a generation that failed after it began, the error on the choice) is a
failure, streamed or not, as an error body in its place already is. It came back as a whole
answer with stop_reason end_turn, so Claude Code took the cut text as the model's last word
and never retried, and the call was charged as a success."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import NEEDS_SDK, OPENAI_ALIAS, MessagesBox, openai_chunk
from tests.support import TLS

pytestmark = NEEDS_SDK

ASK = [{"role": "user", "content": "Tell me a long story."}]
FAILURE = {"code": 502, "message": "Provider disconnected unexpectedly"}
USAGE = {"prompt_tokens": 40, "completion_tokens": 3, "total_tokens": 43}


def _failed_chunk() -> bytes:
    choice = {"index": 0, "delta": {"content": ""}, "finish_reason": "error",
              "native_finish_reason": "error", "error": FAILURE}  # fmt: skip
    chunk = {"id": "gen-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "provider": "SomeHost", "choices": [choice]}  # fmt: skip
    return f"data: {json.dumps(chunk)}\n\n".encode()


FAILED_STREAM = [
    openai_chunk({"role": "assistant", "content": "Once upon"}),
    openai_chunk({"content": " a time"}),
    _failed_chunk(),
    openai_chunk({}, usage=USAGE),
    b"data: [DONE]\n\n",
]
FAILED_ANSWER: dict[str, Any] = {
    "id": "gen-2", "object": "chat.completion", "created": 1, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Once upon a time"},
                 "finish_reason": "error", "error": FAILURE}],
    "usage": USAGE,
}  # fmt: skip


def _post(box: MessagesBox, key: str, stream: bool) -> httpx.Response:
    body = {"model": OPENAI_ALIAS, "max_tokens": 200, "messages": ASK, "stream": stream}
    return httpx.post(f"{box.server.base_url}/v1/messages", json=body,
                      headers={"x-api-key": key}, timeout=30, verify=TLS)  # fmt: skip


def test_a_stream_the_server_ended_in_error_ends_in_an_error_event(fresh: MessagesBox) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(raw=FAILED_STREAM))
    answer = _post(fresh, key, stream=True)
    events = [json.loads(line[6:]) for line in answer.text.splitlines()
              if line.startswith("data: ")]  # fmt: skip
    kinds = [event["type"] for event in events]
    assert "message_delta" not in kinds and "message_stop" not in kinds, kinds
    assert kinds[-1] == "error", kinds
    assert "Provider disconnected" in events[-1]["error"]["message"]
    assert [row["status"] for row in fresh.usage_rows(email)] == ["error"]


def test_the_sdk_stream_raises_rather_than_end_the_turn(fresh: MessagesBox) -> None:
    import anthropic

    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(raw=FAILED_STREAM))
    with (
        pytest.raises(anthropic.APIError),
        fresh.client(key).messages.stream(
            model=OPENAI_ALIAS, max_tokens=200, messages=ASK
        ) as stream,
    ):
        stream.get_final_message()


def test_an_answer_the_server_ended_in_error_is_a_502(fresh: MessagesBox) -> None:
    email, key = fresh.new_key()
    raw = json.dumps(FAILED_ANSWER).encode()
    fresh.openai_fake.push(Reply(raw=[raw], content_type="application/json"))
    answer = _post(fresh, key, stream=False)
    assert answer.status_code == 502, answer.text
    error = answer.json()
    assert error["type"] == "error" and error["error"]["type"] == "api_error"
    assert "Provider disconnected" in error["error"]["message"]
    rows = fresh.usage_rows(email)
    assert [(row["status"], row["cost_nanos"]) for row in rows] == [("error", 0)]
