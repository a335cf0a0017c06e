"""OpenRouter reports a failure after the stream began as a data chunk with an `error` object
(and finish_reason "error"): on /v1/messages and /v1/responses the client's stream ends with its
dialect's error, carrying the message, and the failed call costs nothing."""

from __future__ import annotations

import pytest

from tests.fakes.compatible_wire import DONE, chunk, event
from tests.fakes.openai_upstream import Reply
from tests.quirks.conftest import MODEL
from tests.quirks.routes import only_row
from tests.responses.conftest import ResponsesBox

pytestmark = pytest.mark.timeout(60)
FAILURE = chunk({"content": ""}, "error") | {
    "error": {"code": 502, "message": "Provider returned error: upstream overloaded"}
}


def _failing() -> list[bytes]:
    return [b": OPENROUTER PROCESSING\n\n", event(chunk({"role": "assistant", "content": "Hi"})),
            event(chunk({"content": " there"})), event(FAILURE), DONE]  # fmt: skip


def test_a_messages_stream_ends_with_an_error_event_and_no_charge(box: ResponsesBox) -> None:
    import anthropic

    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=_failing()))
    texts: list[str] = []
    request = {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}]}
    with (
        pytest.raises(anthropic.APIStatusError, match="upstream overloaded"),
        box.client(key).messages.stream(**request) as stream,
    ):
        texts.extend(stream.text_stream)
    assert "".join(texts) == "Hi there"
    assert only_row(box, email)["status"] == "error"
    assert box.balance_nanos(email) == (start, 0)


def test_a_responses_stream_ends_failed_and_costs_nothing(box: ResponsesBox) -> None:
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=_failing()))
    events = list(box.openai(key).responses.create(model=MODEL, input="Hi", stream=True))
    assert events[-1].type == "response.failed"
    assert "upstream overloaded" in events[-1].response.error.message
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Hi there"
    assert only_row(box, email)["status"] == "error"
    assert box.balance_nanos(email) == (start, 0)
