"""llama.cpp's server reports a failure in a stream as an `error:` line (a field SSE readers
skip), then `data: [DONE]`: on every route the call fails with the server's message (chat: an
error chunk; Messages: an `error` event; Responses: `response.failed`; before any output: a
502) and costs nothing. The box read the cut stream as a whole answer and charged it."""

from __future__ import annotations

import pytest

from tests.fakes.compatible_wire import DONE, chunk, event
from tests.fakes.openai_upstream import Reply
from tests.quirks.conftest import MODEL
from tests.quirks.routes import assert_free, chat_text_until_error, failed_responses_stream
from tests.responses.conftest import ResponsesBox

pytestmark = pytest.mark.timeout(60)
ERROR_LINE = (b'error: {"code":500,"message":"llama: the KV cache is full",'
              b'"type":"server_error"}\n\n')  # fmt: skip
ASK = [{"role": "user", "content": "Tell me a story"}]


def _failing() -> list[bytes]:
    return [event(chunk({"role": "assistant", "content": "Once upon"})),
            event(chunk({"content": " a time"})), ERROR_LINE, DONE]  # fmt: skip


def test_a_chat_stream_ends_in_an_error_chunk(box: ResponsesBox) -> None:
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=_failing()))
    told = chat_text_until_error(box, key, "KV cache is full", messages=ASK)
    assert told == "Once upon a time"
    assert_free(box, email, start)


def test_a_messages_stream_ends_in_an_error_event(box: ResponsesBox) -> None:
    import anthropic

    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=_failing()))
    request = {"model": MODEL, "max_tokens": 100, "messages": ASK}
    with (
        pytest.raises(anthropic.APIStatusError, match="KV cache is full"),
        box.client(key).messages.stream(**request) as stream,
    ):
        stream.get_final_message()
    assert_free(box, email, start)


def test_a_responses_stream_ends_failed(box: ResponsesBox) -> None:
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=_failing()))
    failed_responses_stream(box, key, "KV cache is full")
    assert_free(box, email, start)


def test_a_failure_before_any_output_is_a_502(box: ResponsesBox) -> None:
    """Its first event: a server error, tried again as an HTTP 500 is (gateway.max_retries, 2
    by default), then a 502 (tests/hostile/test_first_event_errors.py)."""
    import openai

    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    asked = len(box.openai_fake.requests)
    box.openai_fake.push(*[Reply(raw=[ERROR_LINE, DONE])] * 3)
    with pytest.raises(openai.InternalServerError, match="KV cache is full") as raised:
        list(box.openai(key).chat.completions.create(model=MODEL, messages=ASK, stream=True))
    assert raised.value.status_code == 502
    assert len(box.openai_fake.requests) - asked == 3
    assert_free(box, email, start)


def test_an_error_event_without_an_error_object_fails_the_chat_stream(box: ResponsesBox) -> None:
    import openai

    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    named = b'event: error\ndata: {"message": "llama: the KV cache is full"}\n\n'
    box.openai_fake.push(Reply(raw=[*_failing()[:2], named, DONE]))
    stream = box.openai(key).chat.completions.create(model=MODEL, messages=ASK, stream=True)
    with pytest.raises(openai.APIError, match="KV cache is full"):
        list(stream)
    assert_free(box, email, start)


def test_a_stream_for_an_unstreamed_call_fails_there_too(box: ResponsesBox) -> None:
    import openai

    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=_failing()))  # a server that streams whatever it is asked
    with pytest.raises(openai.InternalServerError, match="KV cache is full") as raised:
        box.openai(key).chat.completions.create(model=MODEL, messages=ASK)
    assert raised.value.status_code == 502
    assert_free(box, email, start)
