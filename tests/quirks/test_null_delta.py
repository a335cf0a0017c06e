"""A chat stream chunk whose choice has `"delta": null` (Azure OpenAI's finish and content
filter chunks) or no `delta` at all (some compatible servers' finish chunk): the chat client
gets OpenAI's shape, a `delta` object on every choice, so the openai SDK's `choice.delta` is
never None (`chunk.choices[0].delta.content` raised AttributeError) and its stream helper
gathers the answer; the call is billed the usage reported."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.compatible_wire import BASE, DONE, chunk, event, text_pieces
from tests.fakes.openai_upstream import Reply
from tests.quirks.conftest import MODEL, PRICES
from tests.quirks.routes import PROMPT, only_row
from tests.responses.conftest import ResponsesBox
from tests.support import usd_nanos

pytestmark = pytest.mark.timeout(60)
TEXT = "Hello there, how are you today?"
USAGE = {"prompt_tokens": 21, "completion_tokens": 8, "total_tokens": 29}
FINISHES = {
    "delta-null": {"index": 0, "delta": None, "finish_reason": "stop",
                   "content_filter_results": {}},
    "no-delta": {"index": 0, "finish_reason": "stop"},
}  # fmt: skip


def _stream(finish: dict[str, Any]) -> list[bytes]:
    body = [event(chunk({"content": piece})) for piece in text_pieces(TEXT)]
    last = BASE | {"choices": [finish]}
    return [*body, event(last), event(BASE | {"choices": [], "usage": USAGE}), DONE]


@pytest.mark.parametrize("finish", FINISHES)
def test_every_chat_chunk_choice_has_a_delta(box: ResponsesBox, finish: str) -> None:
    email, key = box.new_key()
    box.openai_fake.push(Reply(raw=_stream(FINISHES[finish])))
    text, reasons = "", []
    for piece in box.openai(key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": PROMPT}], stream=True,
        stream_options={"include_usage": True},
    ):  # fmt: skip
        for choice in piece.choices:
            text += choice.delta.content or ""
            reasons.append(choice.finish_reason)
    assert (text, reasons[-1]) == (TEXT, "stop")
    row = only_row(box, email)
    assert row["cost_nanos"] == usd_nanos((21, PRICES["in"]), (8, PRICES["out"]))


@pytest.mark.parametrize("finish", FINISHES)
def test_the_sdk_stream_helper_gathers_the_answer(box: ResponsesBox, finish: str) -> None:
    _, key = box.new_key()
    box.openai_fake.push(Reply(raw=_stream(FINISHES[finish])))
    with box.openai(key).chat.completions.stream(
        model=MODEL, messages=[{"role": "user", "content": PROMPT}]
    ) as stream:
        answer = stream.get_final_completion()
    assert answer.choices[0].message.content == TEXT
    assert answer.choices[0].finish_reason == "stop"
