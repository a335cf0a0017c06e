"""Limits on what an upstream may send, through a real box: an answer past
`gateway.max_upstream_body_bytes` (declared by Content-Length or not) fails with a 502 charged
the provider's count (the work was done); a stream event past `gateway.max_sse_event_bytes` (a
body with no blank line at all, or one huge event after good ones) fails with a 502 that costs
nothing (or, once the client got some of the answer, an error event, charged what was counted)
and closes the upstream connection; the box keeps serving; a 3 MB event within the limit
streams."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from itertools import chain
from typing import Any, TypeVar

import httpx
import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import IN_PRICE, MODEL, OUT_PRICE, Box, BoxFactory, cost_nanos
from tests.support import TLS, sdk_http

pytestmark = pytest.mark.timeout(120)
MIB = 1024 * 1024
BODY_LIMIT = 16 * MIB  # lowered for the box of this module
HELLO = [{"role": "user", "content": "Say hello"}]
BASE = {"id": "chatcmpl-big", "object": "chat.completion.chunk", "created": 1, "model": "up"}
DONE = b"data: [DONE]\n\n"
T = TypeVar("T")


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    return box_factory(gateway={"max_upstream_body_bytes": BODY_LIMIT})


@pytest.fixture(scope="module")
def small(box_factory: BoxFactory) -> Box:
    """A box that takes no upstream answer longer than 100 bytes."""
    return box_factory(gateway={"max_upstream_body_bytes": 100})


def in_background(work: Callable[[], T]) -> Future[T]:
    pool = ThreadPoolExecutor(1)
    future = pool.submit(work)
    pool.shutdown(wait=False)
    return future


def completion_json(content_bytes: int) -> tuple[int, Iterator[bytes]]:
    """A valid chat.completion whose content is `content_bytes` of "x", written 1 MiB at a
    time (never held whole): (its length, its pieces)."""
    head = json.dumps({"id": "chatcmpl-big", "object": "chat.completion", "created": 1,
                       "model": "up", "choices": [{"index": 0, "finish_reason": "stop",
                       "message": {"role": "assistant", "content": "@"}}],
                       "usage": {"prompt_tokens": 5, "completion_tokens": 7}}).encode()  # fmt: skip
    before, after = head.split(b"@")
    pieces, rest = divmod(content_bytes, MIB)

    def parts() -> Iterator[bytes]:
        yield before
        for _ in range(pieces):
            yield b"x" * MIB
        yield b"x" * rest + after

    return len(before) + content_bytes + len(after), parts()


def event(value: Any) -> bytes:
    return b"data: " + json.dumps(value).encode() + b"\n\n"


def chunk(text: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {} if text is None else {"content": text}
    return BASE | {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def big_event(content_bytes: int, piece: int) -> Iterator[bytes]:
    """One valid content event of `content_bytes` "y"s, in pieces of `piece` bytes (made as
    they are written, never held whole)."""
    before, after = event(chunk("@")).split(b"@")
    yield before
    for _ in range(content_bytes // piece):
        yield b"y" * piece
    yield b"y" * (content_bytes % piece) + after


def assert_free_502(box: Box, email: str, start: int, response: httpx.Response) -> None:
    assert response.status_code == 502, response.text[:300]
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("api_error", "upstream_too_large")
    assert_free(box, email, start)


def assert_free(box: Box, email: str, start: int) -> None:
    """Nothing charged, nothing held, one error row; the upstream connection was closed."""
    assert box.fake.client_gone.wait(10), "the box must close the upstream connection"
    assert box.balance(email) == (start, 0)
    rows = box.query(
        'SELECT r.request_id FROM usage_record r JOIN "user" u ON u.id = r.user_id '
        "WHERE u.email = ?",
        email,
    )
    row = box.usage_row(rows[0][0])
    assert len(rows) == 1
    assert (row["status"], row["cost_nanos"], row["error_code"]) == (
        "error", 0, "upstream_too_large",
    )  # fmt: skip
    assert httpx.get(box.url + "/healthz", timeout=10, verify=TLS).status_code == 200


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_50_mb_answer_is_a_502_charged_the_providers_count(
    box: Box, fake: FakeOpenAI, declared: bool
) -> None:
    """The provider did the work: the 502 is charged its count, read from the answer's end
    (the rest of the answer read without being kept), never held whole."""
    email, key = box.new_user()
    start = box.balance(email)[0]
    size, parts = completion_json(50 * MIB)
    headers = {"content-length": str(size)} if declared else {}
    fake.push(Reply(raw=parts, content_type="application/json", headers=headers))
    with box.http(key) as http:
        response = http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
    assert response.status_code == 502, response.text[:300]
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("api_error", "upstream_too_large")
    assert "max_upstream_body_bytes" in error["message"]
    cost = cost_nanos(5, 7, IN_PRICE, OUT_PRICE)
    assert box.balance(email) == (start - cost, 0)
    row = box.usage_row(response.headers["x-request-id"])
    assert (row["status"], row["cost_nanos"], row["error_code"]) == (
        "error",
        cost,
        "upstream_too_large",
    )
    assert httpx.get(box.url + "/healthz", timeout=10, verify=TLS).status_code == 200


def test_an_answer_within_the_limit_is_served(box: Box, fake: FakeOpenAI) -> None:
    email, key = box.new_user()
    start = box.balance(email)[0]
    _, parts = completion_json(3 * MIB)
    fake.push(Reply(raw=parts, content_type="application/json"))  # chunked: counted as read
    with box.http(key) as http:
        response = http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
    assert response.status_code == 200, response.text[:300]
    assert response.json()["choices"][0]["message"]["content"] == "x" * 3 * MIB
    assert box.balance(email) == (start - cost_nanos(5, 7, IN_PRICE, OUT_PRICE), 0)


def endless_line(piece: int = 64 * 1024, total: int = 60 * MIB) -> Iterator[bytes]:
    """A stream body of `data:` lines with no blank line: one event that never ends."""
    line = b"data: " + b"z" * 1017 + b"\n"
    block = line * (piece // len(line))
    for _ in range(total // len(block)):
        yield block


def test_a_stream_without_a_blank_line_is_a_free_502(box: Box, fake: FakeOpenAI) -> None:
    email, key = box.new_user()
    start = box.balance(email)[0]
    fake.push(Reply(raw=endless_line(), pause_after=16))  # 1 MiB, then wait for the test
    body = {"model": MODEL, "messages": HELLO, "stream": True}

    def ask() -> httpx.Response:
        with box.http(key) as http:
            return http.post("/v1/chat/completions", json=body)

    answer = in_background(ask)
    assert fake.paused.wait(10)
    # the box serves others while it holds an unfinished upstream event
    assert httpx.get(box.url + "/healthz", timeout=10, verify=TLS).status_code == 200
    fake.resume.set()
    response = answer.result(60)
    assert_free_502(box, email, start, response)
    assert "max_sse_event_bytes" in response.json()["error"]["message"]


def test_an_oversized_event_after_good_ones_is_charged_what_the_client_got(
    box: Box, fake: FakeOpenAI
) -> None:
    """The huge event is valid (the stream would complete without the limit): only its size
    fails it, after the client got the good events, so it ends with an error event; the
    provider did the work and the client has its output, so what was counted is charged (an
    estimate within the hold, as a stream cut at its cap), not nothing."""
    email, key = box.new_user()
    start = box.balance(email)[0]
    tail = [event(chunk(None, "stop")), DONE]
    huge = big_event(24 * MIB, 64 * 1024)  # more than loopback buffers: still being sent
    fake.push(Reply(raw=chain([event(chunk("Hello")), event(chunk(" world"))], huge, tail)))
    received = ""
    stream = box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    with pytest.raises(openai.APIError) as caught:
        for item in stream:
            received += item.choices[0].delta.content or ""
    assert received == "Hello world"
    assert "max_sse_event_bytes" in caught.value.message
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == (
        "upstream_too_large"
    )
    assert_charged_what_was_counted(box, email, start)


def assert_charged_what_was_counted(
    box: Box, email: str, start: int, *, still_sending: bool = True
) -> dict[str, Any]:
    """One error row, charged an estimate of what was seen (its output at least), within its
    hold, nothing left held; an upstream `still_sending` had its connection closed."""
    if still_sending:
        assert box.fake.client_gone.wait(10), "the box must close the upstream connection"
    rows = box.query(
        'SELECT r.request_id FROM usage_record r JOIN "user" u ON u.id = r.user_id '
        "WHERE u.email = ?",
        email,
    )
    assert len(rows) == 1
    row = box.settled_row(rows[0][0])
    assert (row["status"], row["error_code"], row["estimated"]) == (
        "error", "upstream_too_large", 1,
    )  # fmt: skip
    assert row["output_tokens"] >= 2 and row["input_tokens"] > 0
    assert 0 < row["cost_nanos"] <= row["hold_nanos"]
    assert box.balance(email) == (start - row["cost_nanos"], 0)
    return row


NATIVE = "native/gpt-test"  # on a provider added with --responses-api
EVENT_LIMIT = 64 * 1024  # gateway.max_sse_event_bytes of the `native` box


@pytest.fixture(scope="module")
def native(box_factory: BoxFactory, fake: FakeOpenAI) -> Box:
    """A box whose upstream events may be 64 KiB at most, with a model of the fake served
    through OpenAI's Responses API."""
    started = box_factory(gateway={"max_sse_event_bytes": EVENT_LIMIT})
    started.cli("providers", "add", "native", "--kind", "openai", "--base-url", fake.base_url,
                "--key", "sk-fake-native-0001", "--responses-api")  # fmt: skip
    started.cli("models", "set", NATIVE, "--input-per-1m", IN_PRICE, "--output-per-1m",
                OUT_PRICE, "--provider", "native")  # fmt: skip
    started.until_served(NATIVE)
    return started


def responses_events(instructions: str, words: list[str]) -> list[bytes]:
    """A Responses stream as OpenAI sends it: its response object, in response.created and
    response.completed, repeats the request's `instructions`; the .done events and
    response.completed hold the whole text."""
    rid, mid = "resp_echo", "msg_echo"
    text = "".join(words)
    usage = {"input_tokens": 9000, "output_tokens": len(words), "total_tokens": 9000 + len(words)}

    def response(status: str, output: list[Any], counts: Any) -> dict[str, Any]:
        return {"id": rid, "object": "response", "status": status, "model": "up",
                "instructions": instructions, "output": output, "usage": counts}  # fmt: skip

    part = {"type": "output_text", "text": text, "annotations": []}
    item = {"id": mid, "type": "message", "status": "completed", "role": "assistant",
            "content": [part]}  # fmt: skip
    where = {"item_id": mid, "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": response("in_progress", [], None)},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {**item, "status": "in_progress", "content": []}},
        {"type": "response.content_part.added", **where, "part": {**part, "text": ""}},
        *({"type": "response.output_text.delta", **where, "delta": w} for w in words),
        {"type": "response.output_text.done", **where, "text": text},
        {"type": "response.content_part.done", **where, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": response("completed", [item], usage)},
    ]  # fmt: skip
    return [
        f"event: {e['type']}\ndata: {json.dumps(e | {'sequence_number': n})}\n\n".encode()
        for n, e in enumerate(events)
    ]


def test_instructions_echoed_past_the_event_limit_do_not_make_an_answer_free(
    native: Box, fake: FakeOpenAI
) -> None:
    """OpenAI's response object repeats the request's `instructions`: a user who sends them
    just short of max_sse_event_bytes makes response.completed (the echo and the whole text)
    pass it, after every text delta reached the client. The answer was had all the same: it
    is charged what was counted, not nothing (the box's own limit, not the provider's failure)."""
    email, key = native.new_user()
    start = native.balance(email)[0]
    instructions = "x" * (EVENT_LIMIT - 2048)  # response.created fits: the completed one not
    words = [f"word{n} " for n in range(600)]  # ~5 KiB of text, streamed piece by piece
    fake.push(Reply(raw=responses_events(instructions, words), content_type="text/event-stream"))
    body = {"model": NATIVE, "input": "hi", "instructions": instructions, "stream": True}
    with native.http(key) as http, http.stream("POST", "/v1/responses", json=body) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    deltas = [json.loads(line[6:]) for line in lines]
    text = "".join(d.get("delta", "") for d in deltas if d["type"] == "response.output_text.delta")
    assert text == "".join(words)  # the client has the whole answer
    assert "response.failed" in lines[-1] and "max_sse_event_bytes" in lines[-1]
    assert_charged_what_was_counted(native, email, start, still_sending=False)


def test_a_3_mb_event_within_the_limit_streams_while_the_box_serves(
    box: Box, fake: FakeOpenAI
) -> None:
    """4 KiB pieces: each read adds a little to one long event (a parser that rescans what it
    holds on every read spends seconds of CPU on this)."""
    email, key = box.new_user()
    start = box.balance(email)[0]
    usage = BASE | {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 3}}
    pieces = [event(chunk("")), *big_event(3 * MIB, 4096), event(chunk(None, "stop"))]
    fake.push(Reply(raw=[*pieces, event(usage), DONE], pause_after=400))  # mid-event

    def read_all() -> str:
        stream = box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    text = in_background(read_all)
    assert fake.paused.wait(10)
    assert httpx.get(box.url + "/healthz", timeout=10, verify=TLS).status_code == 200
    fake.resume.set()
    assert text.result(60) == "y" * 3 * MIB
    assert box.balance(email) == (start - cost_nanos(9, 3, IN_PRICE, OUT_PRICE), 0)


def test_a_messages_answer_too_large_is_charged_the_providers_count(
    small: Box, fake: FakeOpenAI
) -> None:
    """/v1/messages to an OpenAI upstream: the 502 for an answer past the limit is charged the
    usage at its end, as on /v1/chat/completions (it was an estimate by the bytes: 40 times the
    provider's count of a short answer)."""
    email, key = small.new_user()
    charged = []
    for path, body in [
        ("/v1/chat/completions", {"model": MODEL, "messages": HELLO}),
        ("/v1/messages", {"model": MODEL, "max_tokens": 50, "messages": HELLO}),
    ]:
        fake.push(Reply(prompt_tokens=11, completion_tokens=7))
        with small.http(key) as http:
            response = http.post(path, json=body)
        assert response.status_code == 502, response.text[:300]
        assert "max_upstream_body_bytes" in response.text
        row = small.usage_row(response.headers["x-request-id"])
        charged.append((row["input_tokens"], row["output_tokens"], row["estimated"]))
    assert charged == [(11, 7, 0), (11, 7, 0)]
    assert small.balance(email)[1] == 0


def test_an_embeddings_answer_too_large_is_charged_and_not_told_to_stream(
    small: Box, fake: FakeOpenAI
) -> None:
    """/v1/embeddings past the limit: the 502 is charged the provider's prompt tokens, and its
    advice fits the route (it said "ask for a stream (stream: true)", which embeddings refuse
    with a 400)."""
    email, key = small.new_user()
    fake.push(Reply(prompt_tokens=9))
    body = {"model": MODEL, "input": ["one", "two", "three"], "encoding_format": "float"}
    with small.http(key) as http:
        response = http.post("/v1/embeddings", json=body)
    assert response.status_code == 502, response.text[:300]
    message = response.json()["error"]["message"]
    assert "max_upstream_body_bytes" in message and "stream: true" not in message
    assert "base64" in message and "fewer inputs" in message
    row = small.usage_row(response.headers["x-request-id"])
    assert (row["input_tokens"], row["output_tokens"], row["estimated"]) == (9, 0, 0)
    assert Decimal(response.headers["x-codelace-cost-usd"]) == Decimal(row["cost_nanos"]) / 10**9
    assert small.balance(email)[1] == 0
    with small.http(key) as http:
        assert http.post("/v1/embeddings", json=body | {"stream": True}).status_code == 400
    # Without usage the charge is the input estimate: an embedding has no output, so the
    # answer's bytes are no output tokens (they were, at this model's output price: the whole
    # hold).
    fake.push(Reply(usage=False))
    before = small.balance(email)[0]
    with small.http(key) as http:
        response = http.post("/v1/embeddings", json=body)
    assert response.status_code == 502, response.text[:300]
    row = small.usage_row(response.headers["x-request-id"])
    assert (row["output_tokens"], row["estimated"]) == (0, 1)
    assert 0 < row["input_tokens"] < row["hold_nanos"] // 2500  # at most one a byte
    assert row["cost_nanos"] == cost_nanos(row["input_tokens"], 0, IN_PRICE, OUT_PRICE)
    assert small.balance(email) == (before - row["cost_nanos"], 0)


def test_the_sdks_do_not_retry_a_charged_answer_too_large(small: Box, fake: FakeOpenAI) -> None:
    """The charged 502 says `x-should-retry: false`: the openai and anthropic SDKs retry a 5xx
    twice by default (Claude Code ten times), and each retry of a request whose answer is too
    large was the same work done and charged again, the user paying three times for one 502."""
    import anthropic

    email, key = small.new_user()
    oai = openai.OpenAI(base_url=small.url + "/v1", api_key=key, http_client=sdk_http(openai))
    claude = anthropic.Anthropic(base_url=small.url, api_key=key,
                                 http_client=sdk_http(anthropic))  # fmt: skip
    calls = [
        lambda: oai.embeddings.create(model=MODEL, input=["one", "two", "three"]),
        lambda: oai.chat.completions.create(model=MODEL, messages=HELLO),  # type: ignore[arg-type]
        lambda: claude.messages.create(model=MODEL, max_tokens=50, messages=HELLO),  # type: ignore[arg-type]
    ]
    for call in calls:
        fake.reset()
        with pytest.raises((openai.APIStatusError, anthropic.APIStatusError)) as failed:
            call()
        assert failed.value.status_code == 502
        assert len(fake.requests) == 1, "the SDK retried a 502 that was charged"
        assert failed.value.response.headers["x-should-retry"] == "false"
    rows = small.query(
        'SELECT r.error_code FROM usage_record r JOIN "user" u ON u.id = r.user_id '
        "WHERE u.email = ?",
        email,
    )
    assert [code for (code,) in rows] == ["upstream_too_large"] * 3
    assert small.balance(email)[1] == 0
