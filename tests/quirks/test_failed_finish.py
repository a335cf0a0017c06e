"""An answer an OpenAI-compatible server ended with finish_reason "error" and the error on the
choice only (no top-level `error`: OpenRouter's form for a generation that failed after it
began) is a failure on /v1/chat/completions and /v1/responses as a top-level error chunk
already is: streamed, the chat stream ends with an error chunk (no `[DONE]`) and a Responses
stream with `response.failed`; unstreamed, a 502 in the OpenAI envelope; no charge."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.compatible_wire import BASE, DONE, chunk, event
from tests.fakes.openai_upstream import Reply
from tests.quirks.conftest import MODEL
from tests.quirks.routes import assert_free, chat_text_until_error, failed_responses_stream
from tests.responses.conftest import ResponsesBox

pytestmark = pytest.mark.timeout(60)
FAILURE = {"code": 502, "message": "Provider disconnected unexpectedly"}
USAGE = {"prompt_tokens": 40, "completion_tokens": 3, "total_tokens": 43}
ASK = [{"role": "user", "content": "Tell me a story"}]


def _failing() -> list[bytes]:
    failed = chunk({"content": ""}, "error")
    failed["choices"][0] |= {"native_finish_reason": "error", "error": FAILURE}
    return [event(chunk({"role": "assistant", "content": "Once upon"})),
            event(chunk({"content": " a time"})), event(failed),
            event(BASE | {"choices": [], "usage": USAGE}), DONE]  # fmt: skip


def _failed_answer() -> bytes:
    choice = {"index": 0, "message": {"role": "assistant", "content": "Once upon a time"},
              "finish_reason": "error", "error": FAILURE}  # fmt: skip
    answer: dict[str, Any] = BASE | {"object": "chat.completion", "choices": [choice],
                                     "usage": USAGE}  # fmt: skip
    return json.dumps(answer).encode()


def test_a_chat_stream_ends_in_an_error_chunk_and_costs_nothing(box: ResponsesBox) -> None:
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=_failing()))
    usage = {"include_usage": True}
    told = chat_text_until_error(
        box, key, "Provider disconnected", messages=ASK, stream_options=usage
    )
    assert told == "Once upon a time"
    assert_free(box, email, start)


def test_an_unstreamed_chat_answer_is_a_502(box: ResponsesBox) -> None:
    import openai

    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=[_failed_answer()], content_type="application/json"))
    with pytest.raises(openai.InternalServerError, match="Provider disconnected") as raised:
        box.openai(key).chat.completions.create(model=MODEL, messages=ASK)
    assert raised.value.status_code == 502
    assert_free(box, email, start)


def test_a_responses_stream_ends_failed_and_costs_nothing(box: ResponsesBox) -> None:
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=_failing()))
    events = failed_responses_stream(box, key, "Provider disconnected")
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Once upon a time"
    assert_free(box, email, start)


def test_an_unstreamed_response_is_a_502(box: ResponsesBox) -> None:
    import openai

    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=[_failed_answer()], content_type="application/json"))
    with pytest.raises(openai.InternalServerError, match="Provider disconnected") as raised:
        box.openai(key).responses.create(model=MODEL, input="Hi")
    assert raised.value.status_code == 502
    error = raised.value.body  # the OpenAI envelope's error object, as for any upstream failure
    assert (error["type"], error["code"]) == ("api_error", "upstream_error")  # type: ignore[index]
    assert_free(box, email, start)


def test_a_stream_answered_with_a_failed_json_answer_says_what_failed(box: ResponsesBox) -> None:
    """A streamed call a server answers with one JSON body whose choice failed: the failure
    carries the choice's error message, not a generic one."""
    import openai

    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=[_failed_answer()], content_type="application/json"))
    stream = box.openai(key).chat.completions.create(model=MODEL, messages=ASK, stream=True)
    with pytest.raises(openai.APIError, match="Provider disconnected"):
        list(stream)
    assert_free(box, email, start)
