"""An unstreamed chat answer whose choice has `"message": null` (or no `message`) but reports
its usage (a router whose upstream failed after counting the prompt): the chat client gets
OpenAI's shape, a `message` object on every choice (`{"role": "assistant", "content": null}`,
as a stream's choice without a delta gets an empty `delta`), so the openai SDK's
`choice.message.content` is None instead of raising AttributeError; the call is still charged
the usage reported."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.compatible_wire import BASE
from tests.fakes.openai_upstream import Reply
from tests.quirks.conftest import MODEL, PRICES
from tests.quirks.routes import PROMPT, ROUTES, call, only_row
from tests.responses.conftest import ResponsesBox
from tests.support import usd_nanos

pytestmark = pytest.mark.timeout(60)
USAGE = {"prompt_tokens": 21, "completion_tokens": 3, "total_tokens": 24}
CHOICES = {
    "message-null": {"index": 0, "message": None, "finish_reason": "stop"},
    "no-message": {"index": 0, "finish_reason": "stop"},
}


def _answer(choice: dict[str, Any]) -> Reply:
    body = BASE | {"object": "chat.completion", "choices": [choice], "usage": USAGE}
    return Reply(raw=[json.dumps(body).encode()], content_type="application/json")


@pytest.mark.parametrize("choice", CHOICES)
def test_every_chat_choice_has_a_message(box: ResponsesBox, choice: str) -> None:
    email, key = box.new_key()
    box.openai_fake.push(_answer(CHOICES[choice]))
    answer = box.openai(key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": PROMPT}]
    )
    message = answer.choices[0].message
    assert (message.role, message.content, answer.choices[0].finish_reason) == (
        "assistant", None, "stop")  # fmt: skip
    row = only_row(box, email)
    assert (row["status"], row["estimated"]) == ("ok", 0)
    assert row["cost_nanos"] == usd_nanos((21, PRICES["in"]), (3, PRICES["out"]))


@pytest.mark.parametrize("route", ROUTES)
def test_a_null_message_is_an_empty_answer_charged_its_usage(box: ResponsesBox, route: str) -> None:
    email, key = box.new_key()
    box.openai_fake.push(_answer(CHOICES["message-null"]))
    assert call(box, key, route, stream=False).text == ""
    row = only_row(box, email)
    assert (row["status"], row["input_tokens"], row["output_tokens"]) == ("ok", 21, 3)
