"""A usage of all zeros is no count: LocalAI (with llama.cpp, tools in the request) ends a
stream with `{"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}` after it streamed
an answer, and some proxies answer so too. No call has an empty prompt: the box charges its own
count, as for an answer with no usage at all, never nothing; the chat client sees one usage
chunk, the box's, with what it was charged. So is a prompt count of zero beside an output
count: Ollama reports `prompt_tokens: 0` for a prompt it had cached (ollama/ollama#5370), so
the same long prompt sent again would cost nothing but its output."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.fakes.compatible_wire import BASE, DONE, chunk, event, text_pieces
from tests.fakes.openai_upstream import Reply
from tests.quirks.routes import ROUTES, call, only_row
from tests.responses.conftest import ResponsesBox

pytestmark = pytest.mark.timeout(60)
TEXT = "The answer is forty two, as always."
ZEROS = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def zero_usage_stream(usage: dict[str, int] = ZEROS) -> list[bytes]:
    body = [event(chunk({"role": "assistant", "content": ""}))]
    body += [event(chunk({"content": piece})) for piece in text_pieces(TEXT)]
    body.append(event(chunk({}, "stop")))
    return [*body, event(BASE | {"choices": [], "usage": usage}), DONE]


def zero_usage_answer(usage: dict[str, int] = ZEROS) -> bytes:
    choice = {"index": 0, "message": {"role": "assistant", "content": TEXT},
              "finish_reason": "stop"}  # fmt: skip
    return json.dumps({"id": "c0", "object": "chat.completion", "created": 1, "model": "m",
                       "choices": [choice], "usage": usage}).encode()  # fmt: skip


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
@pytest.mark.parametrize("route", ROUTES)
def test_a_usage_of_zeros_is_charged_the_box_count(
    box: ResponsesBox, route: str, stream: bool
) -> None:
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    raw = zero_usage_stream() if stream else [zero_usage_answer()]
    kind = "text/event-stream" if stream else "application/json"
    box.openai_fake.push(Reply(raw=raw, content_type=kind))
    seen = call(box, key, route, stream=stream)
    assert seen.text == TEXT
    row = only_row(box, email)
    assert row["estimated"] == 1 and row["input_tokens"] > 0 and row["output_tokens"] >= 9
    assert row["cost_nanos"] > 0 and box.balance_nanos(email) == (start - row["cost_nanos"], 0)
    assert (seen.input_tokens, seen.output_tokens) == (row["input_tokens"], row["output_tokens"])
    if seen.cost_usd is not None:
        assert seen.cost_usd * 10**9 == Decimal(row["cost_nanos"])


def test_the_chat_client_sees_one_usage_chunk(box: ResponsesBox) -> None:
    _, key = box.new_key()
    box.openai_fake.push(Reply(raw=zero_usage_stream()))
    chunks = list(box.openai(key).chat.completions.create(
        model="compat/some-model", messages=[{"role": "user", "content": "Hi"}], stream=True,
        stream_options={"include_usage": True},
    ))  # fmt: skip
    usages = [c.usage for c in chunks if c.usage is not None]
    assert len(usages) == 1 and usages[0].prompt_tokens > 0


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
@pytest.mark.parametrize("route", ROUTES)
def test_a_prompt_count_of_zero_is_charged_the_box_count_of_the_input(
    box: ResponsesBox, route: str, stream: bool
) -> None:
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    cached = {"prompt_tokens": 0, "completion_tokens": 9, "total_tokens": 9}
    raw = zero_usage_stream(cached) if stream else [zero_usage_answer(cached)]
    kind = "text/event-stream" if stream else "application/json"
    box.openai_fake.push(Reply(raw=raw, content_type=kind))
    seen = call(box, key, route, stream=stream)
    assert seen.text == TEXT
    row = only_row(box, email)
    assert row["estimated"] == 1 and row["input_tokens"] > 0 and row["output_tokens"] == 9
    assert box.balance_nanos(email) == (start - row["cost_nanos"], 0)
    assert (seen.input_tokens, seen.output_tokens) == (row["input_tokens"], 9)
