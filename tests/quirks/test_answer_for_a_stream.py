"""Some OpenAI-compatible servers answer a streamed call with one whole JSON completion (SGLang
did so for any stream with tools, issue 2810; proxies that buffer): the upstream did the work
and bills for it, so the box relays that answer as the stream its client asked for, on every
route, and bills its usage, not an error that costs the user nothing."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.fakes.compatible_wire import usage_answer
from tests.fakes.openai_upstream import Reply
from tests.quirks.conftest import MODEL, PRICES
from tests.quirks.routes import ROUTES, assert_free, call, only_row
from tests.responses.conftest import ResponsesBox
from tests.support import usd_nanos

pytestmark = pytest.mark.timeout(60)
TEXT = "Hello from a server that never streams."
USAGE = {"prompt_tokens": 19, "completion_tokens": 8, "total_tokens": 27}


@pytest.mark.parametrize("route", ROUTES)
def test_a_whole_answer_to_a_stream_is_streamed_and_billed(box: ResponsesBox, route: str) -> None:
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    box.openai_fake.push(Reply(raw=[usage_answer(TEXT, USAGE)], content_type="application/json"))
    seen = call(box, key, route, stream=True)
    assert seen.text == TEXT
    row = only_row(box, email)
    cost = usd_nanos((19, PRICES["in"]), (8, PRICES["out"]))
    assert (row["status"], row["estimated"], row["cost_nanos"]) == ("ok", 0, cost)
    assert box.balance_nanos(email) == (start - cost, 0)
    assert (seen.input_tokens, seen.output_tokens) == (19, 8)
    if seen.cost_usd is not None:
        assert seen.cost_usd * 10**9 == Decimal(cost)


def test_its_tool_calls_reach_a_streaming_messages_client(box: ResponsesBox) -> None:
    email, key = box.new_key()
    calls = [{"id": "call_s1", "type": "function",
              "function": {"name": "weather", "arguments": '{"city": "Oslo"}'}}]  # fmt: skip
    message = {"role": "assistant", "content": None, "reasoning_content": "Look it up.",
               "tool_calls": calls}  # fmt: skip
    answer = {"id": "sg-1", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
              "usage": USAGE}  # fmt: skip
    box.openai_fake.push(Reply(raw=[json.dumps(answer).encode()], content_type="application/json"))
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    with box.client(key).messages.stream(
        model=MODEL, max_tokens=300, tools=[{"name": "weather", "input_schema": schema}],
        messages=[{"role": "user", "content": "Oslo?"}],
    ) as stream:  # fmt: skip
        final = stream.get_final_message()
    blocks = [(b.type, getattr(b, "thinking", None) or getattr(b, "input", None))
              for b in final.content]  # fmt: skip
    assert blocks == [("thinking", "Look it up."), ("tool_use", {"city": "Oslo"})]
    assert final.stop_reason == "tool_use" and only_row(box, email)["estimated"] == 0


def _leave_while_paused(box: ResponsesBox, key: str, path: str, body: dict[str, Any]) -> None:
    """Ask for a stream, and leave (close the connection) while the upstream's answer is
    paused halfway; then let the upstream finish it."""
    fake = box.openai_fake

    def ask() -> None:
        timeout = httpx.Timeout(30, read=1)
        with (
            contextlib.suppress(httpx.HTTPError),
            box.http(key) as http,
            http.stream("POST", path, json=body, timeout=timeout) as answer,
        ):
            for _ in answer.iter_bytes():
                pass

    asker = threading.Thread(target=ask)
    asker.start()
    assert fake.paused.wait(10), "the upstream never began its answer"
    asker.join(10)  # the client's read timed out: it left
    assert not asker.is_alive()
    time.sleep(0.3)
    fake.resume.set()


ASKED = {
    "chat": ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}]}),
    "messages": ("/v1/messages", {"max_tokens": 100,
                                  "messages": [{"role": "user", "content": "Hi"}]}),
    "responses": ("/v1/responses", {"input": "Hi"}),
}  # fmt: skip


@pytest.mark.parametrize("route", ROUTES)
def test_a_whole_answer_to_a_stream_its_client_left_is_charged_its_usage(
    box: ResponsesBox, route: str
) -> None:
    """The client left before the JSON answer was whole: the box reads it on, and charges the
    usage it carries (not an estimate of its own)."""
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    answer = usage_answer(TEXT, USAGE)
    half = len(answer) // 2
    box.openai_fake.push(Reply(raw=[answer[:half], answer[half:]], pause_after=1,
                               content_type="application/json"))  # fmt: skip
    path, body = ASKED[route]
    _leave_while_paused(box, key, path, {"model": MODEL, "stream": True, **body})
    row = only_row(box, email)
    cost = usd_nanos((19, PRICES["in"]), (8, PRICES["out"]))
    assert (row["status"], row["estimated"], row["error_code"]) == ("abandoned", 0, "client_closed")
    assert (row["input_tokens"], row["output_tokens"], row["cost_nanos"]) == (19, 8, cost)
    assert box.balance_nanos(email) == (start - cost, 0)


def test_such_an_answer_reporting_more_than_its_hold_is_charged_the_hold(box: ResponsesBox) -> None:
    """The usage it carries is still bounded by the hold (max_tokens 50, 9,000 reported)."""
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    answer = usage_answer(TEXT, {"prompt_tokens": 19, "completion_tokens": 9000,
                                 "total_tokens": 9019})  # fmt: skip
    half = len(answer) // 2
    box.openai_fake.push(Reply(raw=[answer[:half], answer[half:]], pause_after=1,
                               content_type="application/json"))  # fmt: skip
    body = {"model": MODEL, "stream": True, "max_tokens": 50,
            "messages": [{"role": "user", "content": "Hi"}]}  # fmt: skip
    _leave_while_paused(box, key, "/v1/chat/completions", body)
    row = only_row(box, email)
    assert (row["status"], row["estimated"], row["output_tokens"]) == ("abandoned", 0, 9000)
    assert 0 < row["cost_nanos"] == row["hold_nanos"] < usd_nanos((9000, PRICES["out"]))
    assert box.balance_nanos(email) == (start - row["hold_nanos"], 0)


@pytest.mark.parametrize("route", ROUTES)
def test_a_whole_answer_to_a_stream_nested_too_deep_to_read_is_a_free_502(
    box: ResponsesBox, route: str
) -> None:
    """json's parser raises RecursionError (no ValueError) on it: the whole answer's reading
    let it out, a 500 'internal error' with a traceback in the log, where a whole answer that
    is no JSON (and the same body to a call that is no stream) is a free 502."""
    email, key = box.new_key()
    start = box.balance_nanos(email)[0]
    deep = b"[" * 100_000 + b"]" * 100_000
    box.openai_fake.push(Reply(raw=[deep], content_type="application/json"))
    path, body = ASKED[route]
    with box.http(key) as http:
        answer = http.post(path, json={"model": MODEL, "stream": True, **body})
    assert answer.status_code == 502, answer.text[:300]
    assert "with no stream" in answer.text, answer.text[:300]
    assert_free(box, email, start)
