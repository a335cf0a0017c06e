"""A client that leaves a stream on /v1/responses to a provider added with `--responses-api`
(the native Responses path): the box reads the upstream on, within the output cap and the read
timeout, and charges what the provider's final `response.completed` reports (row `abandoned`),
its hold released and the ledger whole; an upstream that then goes silent past the read
timeout is charged as the chat route charges the same case (an estimate never below what was
seen, row `estimated`)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, Box, BoxFactory, cost_nanos
from tests.support import TLS, eventually

pytestmark = pytest.mark.timeout(60)
NATIVE = "oair/gpt-test"
IN_PRICE, OUT_PRICE = "3", "15"
PIECES = [f" w{n}" for n in range(20)]
PROMPT, COMPLETION = 77, 333  # what the provider counts: far from the body's estimate


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory, fake: FakeOpenAI) -> Box:
    started = box_factory(gateway={"read_timeout_sec": 1})
    started.cli("providers", "add", "oair", "--kind", "openai", "--responses-api",
                "--base-url", fake.base_url, "--key", "sk-fake-key-0002")  # fmt: skip
    started.cli("models", "set", NATIVE, "--input-per-1m", IN_PRICE, "--output-per-1m",
                OUT_PRICE, "--max-output-tokens", "1000")  # fmt: skip
    started.until_served(NATIVE)
    return started


def _body(route: str, model: str) -> dict[str, Any]:
    if route == "/v1/responses":
        return {"model": model, "input": "hi", "max_output_tokens": 500, "stream": True}
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 500,
            "stream": True, "stream_options": {"include_usage": True}}  # fmt: skip


def leave_after_deltas(box: Box, key: str, route: str, model: str, marker: bytes) -> str:
    """Open a stream, read until `marker` has come twice (the first deltas), close it; the
    call's request id."""
    headers = {"authorization": f"Bearer {key}"}
    client = httpx.Client(base_url=box.url, verify=TLS, timeout=30)
    with client, client.stream("POST", route, json=_body(route, model), headers=headers) as got:
        assert got.status_code == 200, got.read()
        seen = b""
        for chunk in got.iter_bytes():
            seen += chunk
            if seen.count(marker) >= 2:
                break
        assert b" w19" not in seen, "the answer had finished before the client left"
        return got.headers["x-request-id"]


def _no_holds(box: Box) -> None:
    eventually(lambda: not box.query("SELECT COUNT(*) FROM hold")[0][0], "holds released")
    text = httpx.get(box.url + "/metrics", verify=TLS).text
    assert "\ncodelace_open_holds 0.0\n" in text, text


def sdk_leaves_after_deltas(box: Box, key: str) -> str:
    """The openai SDK's Responses stream, closed after its first two text deltas."""
    stream = box.sdk(key).responses.create(
        model=NATIVE, input="hi", max_output_tokens=500, stream=True
    )
    texts: list[str] = []
    with stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                texts.append(event.delta)
                if len(texts) == 2:
                    break
    assert texts == PIECES[:2]
    return str(stream.response.headers["x-request-id"])


@pytest.mark.parametrize("client", ["httpx", "openai"])
def test_a_native_stream_left_midway_is_charged_the_providers_final_count(
    box: Box, fake: FakeOpenAI, client: str
) -> None:
    email, key = box.new_user("1")
    before = box.balance(email)[0]
    fake.push(Reply(pieces=PIECES, piece_delay=0.05, prompt_tokens=PROMPT,
                    completion_tokens=COMPLETION))  # fmt: skip
    if client == "openai":
        request_id = sdk_leaves_after_deltas(box, key)
    else:
        request_id = leave_after_deltas(box, key, "/v1/responses", NATIVE, b"output_text.delta")
    row = box.settled_row(request_id)
    assert fake.requests[-1].path == "/v1/responses"
    assert (row["status"], row["error_code"]) == ("abandoned", "client_closed")
    assert (row["input_tokens"], row["output_tokens"], row["estimated"]) == (
        PROMPT, COMPLETION, 0)  # fmt: skip
    charged = cost_nanos(PROMPT, COMPLETION, IN_PRICE, OUT_PRICE)
    assert int(row["cost_nanos"]) == charged
    _no_holds(box)
    assert box.balance(email) == (before - charged, 0)
    assert not fake.client_gone.is_set(), "the box stopped reading the upstream"
    box.cli("doctor")


@pytest.mark.parametrize("ending", ["silent", "cut"])
@pytest.mark.parametrize(("route", "model", "marker", "pieces"), [
    ("/v1/responses", NATIVE, b"output_text.delta", 4),
    ("/v1/chat/completions", MODEL, b'"content"', 3),  # (the fake's role chunk counts as one)
])  # fmt: skip
def test_a_stream_left_then_failing_is_charged_what_was_seen(
    box: Box, fake: FakeOpenAI, route: str, model: str, marker: bytes, pieces: int, ending: str
) -> None:
    """The chat route's rule, on both routes: an upstream that, after the client left, goes
    silent past the read timeout or cuts its connection worked (and bills the operator) but
    never told its count, so the call is charged an estimate never below the output seen (a
    failure the client is there to hear costs nothing; README "A client that leaves")."""
    email, key = box.new_user("1")
    before = box.balance(email)[0]
    ends = {"hang_after": 4} if ending == "silent" else {"drop_after": 4}
    fake.push(Reply(pieces=PIECES, piece_delay=0.05, prompt_tokens=PROMPT,
                    completion_tokens=COMPLETION, **ends))  # type: ignore[arg-type]  # fmt: skip
    request_id = leave_after_deltas(box, key, route, model, marker)
    row = box.settled_row(request_id)
    assert fake.requests[-1].path == ("/v1/responses" if model == NATIVE else
                                      "/v1/chat/completions")  # fmt: skip
    assert (row["status"], row["error_code"], row["estimated"]) == (
        "abandoned", "client_closed", 1)  # fmt: skip
    assert row["output_tokens"] >= pieces, row  # a token a piece at least
    assert 0 < int(row["cost_nanos"]) <= int(row["hold_nanos"]), row
    if ending == "silent":
        eventually(fake.client_gone.is_set, "the box closed the silent upstream")
    _no_holds(box)
    assert box.balance(email) == (before - int(row["cost_nanos"]), 0)
    box.cli("doctor")


@pytest.mark.parametrize(("route", "model", "marker"), [
    ("/v1/responses", NATIVE, b"output_text.delta"),
    ("/v1/chat/completions", MODEL, b'"content"'),
])  # fmt: skip
def test_a_stream_left_is_read_on_only_to_the_output_cap(
    box: Box, fake: FakeOpenAI, route: str, model: str, marker: bytes
) -> None:
    """An upstream that ignores the cap (writes on and on) after the client left: the box reads
    on only to the reserved output cap, hangs up, and charges no more than the hold."""
    email, key = box.new_user("1")
    before = box.balance(email)[0]
    fake.push(Reply(pieces=PIECES, piece_delay=0.05, endless=" x", endless_limit=20_000))
    request_id = leave_after_deltas(box, key, route, model, marker)
    row = box.settled_row(request_id)
    assert (row["status"], row["error_code"], row["estimated"]) == (
        "abandoned", "client_closed", 1)  # fmt: skip
    # the cap asked for (500), and the piece that came once it was reached (counted, not relayed)
    assert 500 <= row["output_tokens"] <= 501, row
    assert 0 < int(row["cost_nanos"]) <= int(row["hold_nanos"]), row
    eventually(fake.client_gone.is_set, "the box hung up on the upstream at the cap")
    _no_holds(box)
    assert box.balance(email) == (before - int(row["cost_nanos"]), 0)
    box.cli("doctor")


def native_frames(pieces: list[str], terminal: dict[str, Any]) -> list[bytes]:
    """A native stream written as it comes: its start, a text delta a piece, `terminal`."""
    response = {"id": "resp_up1", "object": "response", "created_at": 1, "status": "in_progress",
                "model": "gpt-test", "output": [], "usage": None, "error": None}  # fmt: skip
    at = {"item_id": "msg_up1", "output_index": 0, "content_index": 0}
    events = [
        {"type": "response.created", "response": response},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"id": "msg_up1", "type": "message", "status": "in_progress",
                  "role": "assistant", "content": []}},
        *[{"type": "response.output_text.delta", **at, "delta": p} for p in pieces],
        {**terminal, "response": response | terminal["response"]},
    ]  # fmt: skip
    return [
        f"event: {e['type']}\ndata: {json.dumps(e | {'sequence_number': n})}\n\n".encode()
        for n, e in enumerate(events)
    ]


USAGE = {"input_tokens": PROMPT, "input_tokens_details": {"cached_tokens": 0},
         "output_tokens": COMPLETION, "output_tokens_details": {"reasoning_tokens": 100},
         "total_tokens": PROMPT + COMPLETION}  # fmt: skip


def test_a_native_stream_left_then_incomplete_is_charged_its_reported_count(
    box: Box, fake: FakeOpenAI
) -> None:
    """`response.incomplete` (the upstream stopped at max_output_tokens) is a terminal event
    with the provider's count, as `response.completed` is."""
    email, key = box.new_user("1")
    before = box.balance(email)[0]
    incomplete = {"type": "response.incomplete", "response": {
        "status": "incomplete", "usage": USAGE,
        "incomplete_details": {"reason": "max_output_tokens"}}}  # fmt: skip
    fake.push(Reply(raw=native_frames(PIECES, incomplete), piece_delay=0.05))
    request_id = leave_after_deltas(box, key, "/v1/responses", NATIVE, b"output_text.delta")
    row = box.settled_row(request_id)
    assert (row["status"], row["error_code"], row["estimated"]) == (
        "abandoned", "client_closed", 0)  # fmt: skip
    assert (row["input_tokens"], row["output_tokens"]) == (PROMPT, COMPLETION)
    charged = cost_nanos(PROMPT, COMPLETION, IN_PRICE, OUT_PRICE)
    assert int(row["cost_nanos"]) == charged
    _no_holds(box)
    assert box.balance(email) == (before - charged, 0)
    box.cli("doctor")


@pytest.mark.parametrize("route", ["/v1/responses", "/v1/chat/completions"])
def test_a_stream_left_then_failed_by_the_upstream_is_charged_what_was_seen(
    box: Box, fake: FakeOpenAI, route: str
) -> None:
    """A failure after the client left (native `response.failed`, a chat error event) once
    output came: charged an estimate never below the output seen, on both routes alike (the
    provider produced that output; no client is there to be told of a failure)."""
    email, key = box.new_user("1")
    before = box.balance(email)[0]
    if route == "/v1/responses":
        failed = {"type": "response.failed", "response": {
            "status": "failed", "error": {"code": "server_error", "message": "boom"}}}  # fmt: skip
        fake.push(Reply(raw=native_frames(PIECES, failed), piece_delay=0.05))
        model, marker = NATIVE, b"output_text.delta"
    else:
        fake.push(Reply(pieces=PIECES, piece_delay=0.05, error_after=15))
        model, marker = MODEL, b'"content"'
    request_id = leave_after_deltas(box, key, route, model, marker)
    row = box.settled_row(request_id)
    assert (row["status"], row["error_code"], row["estimated"]) == (
        "abandoned", "client_closed", 1)  # fmt: skip
    assert row["output_tokens"] >= 14, row  # the pieces before the failure, a token each
    assert 0 < int(row["cost_nanos"]) <= int(row["hold_nanos"]), row
    _no_holds(box)
    assert box.balance(email) == (before - int(row["cost_nanos"]), 0)
    box.cli("doctor")


@pytest.mark.parametrize("stream", [True, False])
def test_a_native_call_left_before_its_first_byte_is_charged_the_providers_count(
    box: Box, fake: FakeOpenAI, stream: bool
) -> None:
    """The client gives up while the native upstream is still connecting (before any byte of
    the answer): the box reads the answer on all the same and charges its final count (a
    stream's row says `client_closed`, a whole answer's none: as on the chat route)."""
    email, key = box.new_user("1")
    before = box.balance(email)[0]
    fake.push(Reply(pieces=PIECES, delay_before=0.6, prompt_tokens=PROMPT,
                    completion_tokens=COMPLETION))  # fmt: skip
    headers = {"authorization": f"Bearer {key}"}
    with httpx.Client(base_url=box.url, verify=TLS) as client, pytest.raises(httpx.ReadTimeout):
        body = _body("/v1/responses", NATIVE) | {"stream": stream}
        client.post("/v1/responses", json=body, headers=headers,
                    timeout=httpx.Timeout(30, read=0.2))  # fmt: skip
    eventually(lambda: box.query("SELECT COUNT(*) FROM usage_record u JOIN \"user\" s ON "
                                 "s.id = u.user_id WHERE s.email = ?", email)[0][0],
               "the call settled")  # fmt: skip
    [row] = box.query("SELECT u.status, u.error_code, u.estimated, u.input_tokens, "
                      "u.output_tokens, u.cost_nanos FROM usage_record u JOIN \"user\" s ON "
                      "s.id = u.user_id WHERE s.email = ?", email)  # fmt: skip
    charged = cost_nanos(PROMPT, COMPLETION, IN_PRICE, OUT_PRICE)
    code = "client_closed" if stream else None
    assert tuple(row) == ("abandoned", code, 0, PROMPT, COMPLETION, charged)
    _no_holds(box)
    assert box.balance(email) == (before - charged, 0)
    box.cli("doctor")
