"""Streams as OpenAI-compatible servers shape them, through every route with the real SDKs:
the client gets the whole text, and the call is billed the usage the server reported (wherever
it put it), exactly."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tests.fakes.compatible_wire import BASE, DONE, chunk, event, text_pieces
from tests.fakes.openai_upstream import Reply
from tests.quirks.conftest import PRICES
from tests.quirks.routes import ROUTES, call, only_row
from tests.responses.conftest import ResponsesBox
from tests.support import usd_nanos

pytestmark = pytest.mark.timeout(60)
TEXT = "Hello there, how are you today?"
PROMPT, COMPLETION = 21, 8
USAGE = {"prompt_tokens": PROMPT, "completion_tokens": COMPLETION,
         "total_tokens": PROMPT + COMPLETION}  # fmt: skip


def _content(text: str = TEXT, **extra: Any) -> list[bytes]:
    return [event(chunk({"content": piece}, **extra)) for piece in text_pieces(text)]


def cumulative_usage() -> list[bytes]:
    """vLLM's continuous_usage_stats (Together alike): a running usage on every chunk, the last
    one whole, no usage chunk of its own."""
    body, pieces = [], text_pieces(TEXT)
    for n, piece in enumerate(pieces, 1):
        running = {"prompt_tokens": PROMPT, "completion_tokens": n, "total_tokens": PROMPT + n}
        body.append(event(chunk({"content": piece}, usage=running)))
    return [*body, event(chunk({}, "stop", usage=USAGE)), DONE]


def usage_with_finish() -> list[bytes]:
    """The usage in the finish chunk (llama.cpp, DeepSeek), `"usage": null` before it."""
    return [*_content(usage=None), event(chunk({}, "stop", usage=USAGE)), DONE]


def no_role_event_lines_crlf() -> list[bytes]:
    """No role chunk, `event:` lines on a chat stream, CRLF line ends, a comment, `data:`
    without its space, and `choices: []` without usage in the middle."""
    out = [b": ping\r\n\r\n"]
    for piece in text_pieces(TEXT):
        out.append(b"event: message\r\n" + event(chunk({"content": piece}), b"data:", b"\r\n\r\n"))
    out.insert(3, event(BASE | {"choices": []}, end=b"\r\n\r\n"))
    out.append(event(chunk({}, "stop"), end=b"\r\n\r\n"))
    out.append(event(BASE | {"choices": [], "usage": USAGE}, end=b"\r\n\r\n"))
    return [*out, b"data: [DONE]\r\n\r\n"]


def finish_before_last_content() -> list[bytes]:
    """A finish_reason (a non-standard "eos") on a chunk before the last piece of content."""
    pieces = _content()
    last = event(chunk({"content": ""}, "eos"))
    return [*pieces[:-1], last, pieces[-1], event(BASE | {"choices": [], "usage": USAGE}), DONE]


def finish_with_last_content() -> list[bytes]:
    """The last piece of content and the finish_reason in one chunk, then the usage chunk."""
    pieces = text_pieces(TEXT)
    body = [event(chunk({"content": piece})) for piece in pieces[:-1]]
    body.append(event(chunk({"content": pieces[-1]}, "stop")))
    return [*body, event(BASE | {"choices": [], "usage": USAGE}), DONE]


SHAPES: dict[str, Callable[[], list[bytes]]] = {
    "cumulative-usage": cumulative_usage,
    "usage-with-finish": usage_with_finish,
    "no-role-event-lines-crlf": no_role_event_lines_crlf,
    "finish-before-last-content": finish_before_last_content,
    "finish-with-last-content": finish_with_last_content,
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("route", ROUTES)
def test_stream_shapes_give_the_text_and_bill_the_reported_usage(
    box: ResponsesBox, route: str, shape: str
) -> None:
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=SHAPES[shape]()))
    seen = call(box, key, route, stream=True)
    assert seen.text == TEXT
    row = only_row(box, email)
    cost = usd_nanos((PROMPT, PRICES["in"]), (COMPLETION, PRICES["out"]))
    assert (row["status"], row["estimated"], row["input_tokens"], row["output_tokens"]) == (
        "ok", 0, PROMPT, COMPLETION)  # fmt: skip
    assert row["cost_nanos"] == cost and box.balance_nanos(email) == (start - cost, 0)
    assert (seen.input_tokens, seen.output_tokens) == (PROMPT, COMPLETION)
    if seen.cost_usd is not None:
        assert seen.cost_usd * 10**9 == Decimal(cost)


def running_usage_to_the_cap() -> list[bytes]:
    """A running usage on every chunk that counts the chunk it rides on (Together, vLLM's
    continuous_usage_stats), the last piece with the finish_reason "length": the answer took
    exactly its max_tokens."""
    body, pieces = [], text_pieces(TEXT)
    for n, piece in enumerate(pieces, 1):
        running = {"prompt_tokens": PROMPT, "completion_tokens": n, "total_tokens": PROMPT + n}
        finish = "length" if n == len(pieces) else None
        body.append(event(chunk({"content": piece}, finish, usage=running)))
    return [*body, DONE]


def usage_on_the_last_piece_at_the_cap() -> list[bytes]:
    """DeepSeek's: the last piece of content carries the finish_reason ("length") and the
    usage, whose completion_tokens are the max_tokens asked for."""
    pieces = _content(usage=None)
    usage = {"prompt_tokens": PROMPT, "completion_tokens": PIECES, "total_tokens": PROMPT + PIECES}
    last = chunk({"content": text_pieces(TEXT)[-1]}, "length", usage=usage)
    return [*pieces[:-1], event(last), DONE]


PIECES = len(text_pieces(TEXT))  # a token each
CAP_OPTION = {"chat": "max_tokens", "messages": "max_tokens", "responses": "max_output_tokens"}


@pytest.mark.parametrize("shape", [running_usage_to_the_cap, usage_on_the_last_piece_at_the_cap])
@pytest.mark.parametrize("route", ROUTES)
def test_an_answer_of_exactly_its_cap_is_relayed_whole(
    box: ResponsesBox, route: str, shape: Callable[[], list[bytes]]
) -> None:
    """A count that rides on the piece it counts reaching the cap is no output past it: the
    last piece is the client's, and the call is billed the usage reported (not an estimate)."""
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=shape()))
    seen = call(box, key, route, stream=True, **{CAP_OPTION[route]: PIECES})
    assert seen.text == TEXT
    row = only_row(box, email)
    cost = usd_nanos((PROMPT, PRICES["in"]), (PIECES, PRICES["out"]))
    assert (row["status"], row["estimated"], row["error_code"], row["output_tokens"]) == (
        "ok", 0, None, PIECES)  # fmt: skip
    assert row["cost_nanos"] == cost and box.balance_nanos(email) == (start - cost, 0)
