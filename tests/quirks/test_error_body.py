"""An unstreamed answer whose body carries a top-level `error` beside its `choices` (none, or
some) is a failure, as a stream chunk with an `error` object already is: a 502 in the route's
envelope and no charge. It came back as a 200 (chat relayed the error object inside it; the
other routes dropped it) and was charged, an empty answer included."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.compatible_wire import BASE
from tests.fakes.openai_upstream import Reply
from tests.quirks.conftest import MODEL
from tests.quirks.routes import assert_free, only_row
from tests.responses.conftest import ResponsesBox

pytestmark = pytest.mark.timeout(60)
ASK = [{"role": "user", "content": "Tell me a story"}]
USAGE = {"prompt_tokens": 40, "completion_tokens": 3, "total_tokens": 43}
ONE_CHOICE = [{"index": 0, "message": {"role": "assistant", "content": "Once"},
               "finish_reason": "stop"}]  # fmt: skip


def _answer(choices: list[Any]) -> bytes:
    error = {"code": 502, "message": "Provider returned error: upstream overloaded"}
    body = BASE | {"object": "chat.completion", "choices": choices, "error": error}
    return json.dumps(body | ({"usage": USAGE} if choices else {})).encode()


@pytest.mark.parametrize("choices", [[], ONE_CHOICE], ids=["no_choice", "a_choice"])
def test_a_chat_answer_with_an_error_is_a_502(box: ResponsesBox, choices: list[Any]) -> None:
    import openai

    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=[_answer(choices)], content_type="application/json"))
    with pytest.raises(openai.InternalServerError, match="upstream overloaded") as raised:
        box.openai(key).chat.completions.create(model=MODEL, messages=ASK)
    assert raised.value.status_code == 502
    assert_free(box, email, start)


def test_a_messages_answer_with_an_error_and_no_choice_is_a_502(box: ResponsesBox) -> None:
    import anthropic

    email, key = box.new_key()
    box.openai_fake.push(Reply(raw=[_answer([])], content_type="application/json"))
    with pytest.raises(anthropic.InternalServerError, match="upstream overloaded"):
        box.client(key).messages.create(model=MODEL, max_tokens=100, messages=ASK)
    assert only_row(box, email)["cost_nanos"] == 0


def test_a_stream_answered_so_is_a_502(box: ResponsesBox) -> None:
    """A streamed call a server answers with one JSON body (a buffering proxy) fails so too."""
    import openai

    email, key = box.new_key()
    box.openai_fake.push(Reply(raw=[_answer(ONE_CHOICE)], content_type="application/json"))
    with pytest.raises(openai.InternalServerError, match="upstream overloaded"):
        list(box.openai(key).chat.completions.create(model=MODEL, messages=ASK, stream=True))
    assert only_row(box, email)["cost_nanos"] == 0
