"""A stream that ends with `[DONE]` having produced nothing (no text, no reasoning, no tool
call, no finish_reason, no usage: a router in front of an account that lost its sign-in, a
proxy whose upstream failed before the first token) is no answer: a 502 in the route's
envelope and no charge, tried again first as any failure before the first event is. It was a
200 with an empty answer, charged the box's estimate of the prompt."""

from __future__ import annotations

import pytest

from tests.fakes.compatible_wire import DONE, chunk, event
from tests.fakes.openai_upstream import Reply
from tests.quirks.routes import (
    ROUTES,
    assert_free,
    call,
    chat_text_until_error,
    failed_responses_stream,
    only_row,
)
from tests.responses.conftest import ResponsesBox

pytestmark = pytest.mark.timeout(60)
ROLE_THEN_DONE = [event(chunk({"role": "assistant", "content": ""})), b": ping\n\n", DONE]
SAID = "without an answer"
ASK = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize("route", ROUTES)
def test_a_stream_of_only_done_is_a_free_502(box: ResponsesBox, route: str) -> None:
    import anthropic
    import openai

    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(*[Reply(raw=[DONE])] * 3)
    with pytest.raises((openai.APIStatusError, anthropic.APIStatusError), match=SAID) as raised:
        call(box, key, route, stream=True)
    assert raised.value.status_code == 502
    assert_free(box, email, start)


@pytest.mark.parametrize("route", ROUTES)
def test_a_stream_of_only_its_role_ends_in_an_error(box: ResponsesBox, route: str) -> None:
    """The role chunk relayed, the stream ends in the route's error (chat: an error chunk;
    Messages: an `error` event; Responses: `response.failed`), and costs nothing."""
    import anthropic

    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=ROLE_THEN_DONE))
    if route == "chat":
        assert chat_text_until_error(box, key, SAID, messages=ASK) == ""
    elif route == "messages":
        with pytest.raises(anthropic.APIStatusError, match=SAID):
            call(box, key, route, stream=True)
    else:
        failed_responses_stream(box, key, SAID)
    assert_free(box, email, start)


@pytest.mark.parametrize("route", ROUTES)
def test_an_empty_answer_that_finished_is_still_one(box: ResponsesBox, route: str) -> None:
    """An answer of no text that the server ended (finish_reason "stop": the model stopped at
    once) is an answer, charged: its prompt was read."""
    email, key = box.new_key()
    stopped = [event(chunk({"role": "assistant", "content": ""})), event(chunk({}, "stop")), DONE]
    box.openai_fake.push(Reply(raw=stopped))
    assert call(box, key, route, stream=True).text == ""
    row = only_row(box, email)
    assert (row["status"], row["estimated"]) == ("ok", 1) and row["cost_nanos"] > 0
