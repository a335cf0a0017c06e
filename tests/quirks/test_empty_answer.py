"""An unstreamed answer with an empty `choices` list and no usage (nothing made, nothing
counted) is no answer, as one without `choices` already is: a 502 in the route's envelope and
no charge. It was a 200 (chat: `choices: []`, where the client's `answer.choices[0]` raised
IndexError; Messages and Responses: an empty answer), charged the box's estimate."""

from __future__ import annotations

import json

import pytest

from tests.fakes.compatible_wire import BASE
from tests.fakes.openai_upstream import Reply
from tests.quirks.routes import ROUTES, assert_free, call, only_row
from tests.responses.conftest import ResponsesBox

pytestmark = pytest.mark.timeout(60)
NO_CHOICE = json.dumps(BASE | {"object": "chat.completion", "choices": []}).encode()
USAGE = {"prompt_tokens": 40, "completion_tokens": 0, "total_tokens": 40}


@pytest.mark.parametrize("route", ROUTES)
def test_an_answer_of_no_choice_is_a_free_502(box: ResponsesBox, route: str) -> None:
    import anthropic
    import openai

    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(*[Reply(raw=[NO_CHOICE], content_type="application/json")] * 3)
    with pytest.raises((openai.APIStatusError, anthropic.APIStatusError)) as raised:
        call(box, key, route, stream=False)
    assert raised.value.status_code == 502
    assert_free(box, email, start)


def test_no_choice_with_its_usage_is_charged_that_usage(box: ResponsesBox) -> None:
    """The server counted the prompt it read: that count is charged, as before."""
    email, key = box.new_key()
    counted = json.dumps(BASE | {"object": "chat.completion", "choices": [], "usage": USAGE})
    box.openai_fake.push(Reply(raw=[counted.encode()], content_type="application/json"))
    assert call(box, key, "messages", stream=False).text == ""
    row = only_row(box, email)
    assert (row["status"], row["estimated"], row["input_tokens"]) == ("ok", 0, 40)


NO_MESSAGE = [  # choices there, but none carries a message: no answer either
    {"index": 0, "message": None, "finish_reason": "stop"},
    {"index": 0, "finish_reason": "stop"},
    None,
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("choice", NO_MESSAGE, ids=["message-null", "no-message", "null"])
def test_a_choice_without_a_message_and_no_usage_is_a_free_502_tried_again(
    box: ResponsesBox, choice: object, route: str
) -> None:
    """`"message": null` (a router whose upstream failed), no message at all, a null choice,
    and no usage: nothing made, nothing counted. It was a 200 charged the box's estimate (chat
    handing `message: null` on); now the free 502 of `choices: []`, which the SDKs try again."""
    import anthropic
    import openai

    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    body = json.dumps(BASE | {"object": "chat.completion", "choices": [choice]}).encode()
    box.openai_fake.push(*[Reply(raw=[body], content_type="application/json")] * 3)
    errors = (openai.APIStatusError, anthropic.APIStatusError)
    with pytest.raises(errors, match="without an answer") as raised:
        call(box, key, route, stream=False)
    assert raised.value.status_code == 502
    assert raised.value.response.headers.get("x-should-retry") != "false"  # SDKs try again
    assert_free(box, email, start)
