"""Upstreams that misbehave, on every inference route, to both kinds of provider.

One box in front of a hostile upstream (tests/fakes/hostile_upstream.py) that serves as an
`openai` provider (`ho`) and an `anthropic` provider (`ha`), two keys each. Each test scripts
the bytes the upstream answers and checks what the client of /v1/chat/completions,
/v1/messages and /v1/responses gets, what was charged, what the usage row says, and that no
credit stays held.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.hostile_upstream import (
    SSE,
    Act,
    HostileUpstream,
    anthropic_body,
    anthropic_event,
    anthropic_stream,
    chat_body,
    chat_stream,
)
from tests.support import (
    BoxDriver,
    LedgerView,
    ServerProcess,
    base_sections,
    free_port,
    write_config,
)

pytestmark = pytest.mark.timeout(60)
RETRIES = 2
KINDS = ("ho", "ha")  # the openai provider, the anthropic provider
ROUTES = ("chat", "messages", "responses")
BODY_LIMIT, EVENT_LIMIT = 8192, 4096  # gateway.max_upstream_body_bytes, max_sse_event_bytes
PRICES = ("--input-per-1m", "1", "--output-per-1m", "2")
PATHS = {"chat": "/v1/chat/completions", "messages": "/v1/messages", "responses": "/v1/responses"}


@dataclass
class HostileBox(BoxDriver, LedgerView):
    server: ServerProcess
    config: Path
    db_path: Path

    email_prefix = "hostile"
    email_domain = "hostile.test"

    def post(self, key: str, route: str, kind: str, stream: bool) -> httpx.Response:
        """One inference call of `route` to the model of provider `kind`."""
        body: dict[str, Any] = {"model": f"{kind}/m", "stream": stream}
        if route == "chat":
            body["messages"] = [{"role": "user", "content": "hi"}]
        elif route == "messages":
            body |= {"max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
        else:
            body["input"] = "hi"
        with self.http(key) as client:
            return client.post(PATHS[route], json=body)

    def last_row(self, email: str) -> dict[str, Any]:
        rows = self.usage_rows(email)
        assert len(rows) == 1, rows
        return rows[0]

    def open_holds(self) -> float:
        text = httpx.get(self.url + "/metrics").text
        found = re.search(r"^codelace_open_holds (\S+)$", text, re.MULTILINE)
        assert found, text
        return float(found.group(1))


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileUpstream]:
    server = HostileUpstream().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_hostile(hostile: HostileUpstream) -> None:
    hostile.reset()


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory, hostile: HostileUpstream) -> Iterator[HostileBox]:
    folder = tmp_path_factory.mktemp("hostile")
    sections = base_sections(folder, free_port())
    sections["gateway"] = {"read_timeout_sec": 1.0, "connect_timeout_sec": 1.0,
                           "max_retries": RETRIES, "key_probe_sec": 0.5,
                           "max_upstream_body_bytes": BODY_LIMIT,
                           "max_sse_event_bytes": EVENT_LIMIT}  # fmt: skip
    config = write_config(folder / "codelace.toml", sections)
    box = HostileBox(None, config, Path(sections["database"]["path"]))  # type: ignore[arg-type]
    urls = {"ho": hostile.base_url, "ha": hostile.base_url.removesuffix("/v1")}
    for kind, name in (("ho", "openai"), ("ha", "anthropic")):
        box.cli("providers", "add", kind, "--kind", name, "--base-url", urls[kind],
                "--key", f"sk-{kind}-key-0001")  # fmt: skip
        box.cli("providers", "key-add", kind, "--key", f"sk-{kind}-key-0002")
        box.cli("models", "set", f"{kind}/m", "--provider", kind, "--upstream-model", "m",
                *PRICES, "--max-output-tokens", "1000")  # fmt: skip
    box.server = ServerProcess(config, int(sections["server"]["port"]),
                               env={"CODELACE_SSE_KEEPALIVE_SEC": "0.3"})  # fmt: skip
    box.server.start()
    yield box
    box.server.stop()


def body_of(kind: str, **drop: bool) -> Act:
    """A 200 JSON answer of the provider's kind, with parts left out."""
    return Act(200, [chat_body(**drop) if kind == "ho" else anthropic_body(**drop)])


def stream_of(kind: str, end: bool = True) -> list[bytes]:
    return chat_stream(end=end) if kind == "ho" else anthropic_stream(end=end)


def events(text: str) -> list[str]:
    """The data of the SSE events a client got (keep-alive comments left out)."""
    return [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data:")]


def assert_ends_with_error(route: str, text: str, words: str) -> None:
    """A stream that failed after it started ends with one error event of its route's
    dialect, carrying `words`, and nothing after it."""
    last = events(text)[-1]
    assert words in last, text
    data = json.loads(last)
    if route == "chat":
        assert "error" in data
    elif route == "messages":
        assert data["type"] == "error", text
    else:
        assert data["type"] == "response.failed", text


def assert_free(box: HostileBox, email: str, start: int, code: str) -> None:
    """A failed call: nothing charged, its hold released, an error row with `code`."""
    assert box.balance_nanos(email) == (start, 0)
    row = box.last_row(email)
    assert (row["status"], row["cost_nanos"], row["error_code"]) == ("error", 0, code), row


@pytest.mark.parametrize("route", ROUTES)
def test_an_anthropic_answer_without_usage_is_charged_an_estimate_not_free(
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    """An Anthropic-compatible server that leaves `usage` out of a message (as an OpenAI one
    may, which is charged an estimate) did the work all the same: the call is charged the
    box's count, marked estimated, on every route (it was free on chat completions and
    responses: charged 0 tokens, not even estimated)."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    hostile.default = body_of("ha", usage=False)
    answer = box.post(key, route, "ha", stream=False)
    assert answer.status_code == 200, answer.text
    row = box.last_row(email)
    assert row["status"] == "ok" and row["estimated"] == 1, row
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0, row
    assert 0 < row["cost_nanos"] <= row["hold_nanos"]
    assert box.balance_nanos(email) == (start - row["cost_nanos"], 0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_a_malformed_stream_event_ends_the_stream_with_an_error_and_costs_nothing(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str
) -> None:
    """A data line that is not JSON in the middle of a stream is a broken upstream, whatever
    follows it: the client's stream ends with an error event of its dialect and the call costs
    nothing. From an Anthropic upstream the line was dropped without a word and the stream
    went on as if complete: a text with a hole in it, status ok, charged."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    whole = stream_of(kind)
    hostile.default = Act(200, [*whole[:3], b"data: {not json\n\n", *whole[3:]], SSE)
    answer = box.post(key, route, kind, stream=True)
    assert answer.status_code == 200
    assert_ends_with_error(route, answer.text, "malformed stream event")
    assert_free(box, email, start, "upstream_error")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_an_upstream_silent_mid_stream_ends_it_with_a_timeout_said_once(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str
) -> None:
    """Silent past read_timeout_sec (1 s) after some content: an error event that says so (once:
    it read "the upstream did not answer in time: the upstream did not answer in time"), the
    call free, its hold released, the upstream's connection closed."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    hostile.default = Act(200, stream_of(kind, end=False), SSE, hang=True)
    began = time.monotonic()
    answer = box.post(key, route, kind, stream=True)
    assert time.monotonic() - began < 5
    assert_ends_with_error(route, answer.text, "did not answer in time")
    assert answer.text.count("did not answer in time") == 1, answer.text
    assert_free(box, email, start, "upstream_timeout")
    assert hostile.client_gone.wait(5)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (anthropic_body(content=False), "without content"),
        (json.dumps({"type": "error", "error": {"type": "overloaded_error",
                                                "message": "Overloaded"}}).encode(),
         "Overloaded"),
    ],
    ids=["no-content", "error-body"],
)  # fmt: skip
def test_an_anthropic_200_that_is_no_message_is_a_free_502(
    box: HostileBox, hostile: HostileUpstream, route: str, answer: bytes, words: str
) -> None:
    """A 200 from an Anthropic-compatible server whose body is no `message` (no `content`, or
    an error body a proxy sent with 200) is the upstream's failure, as an OpenAI answer without
    `choices` is: a 502 that says so, nothing charged. It was a 200 with an empty answer,
    charged (and /v1/messages relayed a message without `content`, which Anthropic's SDKs and
    Claude Code do not take)."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    hostile.default = Act(200, [answer])
    reply = box.post(key, route, "ha", stream=False)
    assert reply.status_code == 502, reply.text
    assert words in reply.text
    assert box.balance_nanos(email) == (start, 0)
    assert box.last_row(email)["status"] == "error"


def leave_after_first_bytes(box: HostileBox, key: str, route: str, kind: str) -> str:
    """Start a stream, take its first bytes, leave; returns the request id."""
    body: dict[str, Any] = {"model": f"{kind}/m", "stream": True, "max_tokens": 100,
                            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    with box.http(key) as client, client.stream("POST", PATHS[route], json=body) as answer:
        assert answer.status_code == 200
        next(answer.iter_bytes())
        return answer.headers["x-request-id"]


def settled_row(box: HostileBox, email: str, wait: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + wait
    while not (rows := box.usage_rows(email)):
        assert time.monotonic() < deadline, "never settled"
        time.sleep(0.05)
    return rows[0]


def paced(writes: list[bytes], pause: float) -> list[bytes | float]:
    return [item for write in writes for item in (write, pause)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ("chat", "messages"))
def test_a_left_stream_still_producing_past_the_read_timeout_is_charged_the_providers_count(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str
) -> None:
    """gateway.read_timeout_sec is the longest silence between bytes, not a limit on a whole
    answer: a stream its client left that goes on producing, each piece well within the
    timeout (0.2 s of 1 s) but longer than it in all, is read to its end and charged what the
    provider reports. It was cut read_timeout_sec after the client left and charged an
    estimate (an OpenAI upstream's input guessed: 29 tokens for its 7)."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    pieces = tuple(f" w{n}" for n in range(8))
    whole = chat_stream(pieces) if kind == "ho" else anthropic_stream(pieces)
    hostile.default = Act(200, paced(whole, 0.2), SSE)
    leave_after_first_bytes(box, key, route, kind)
    row = settled_row(box, email)
    assert (row["status"], row["estimated"]) == ("abandoned", 0), row
    assert (row["input_tokens"], row["output_tokens"]) == (7, 3)
    assert box.balance_nanos(email) == (start - row["cost_nanos"], 0)
    assert box.open_holds() == 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_left_stream_that_only_keeps_talking_is_cut_after_the_read_timeout(
    box: HostileBox, hostile: HostileUpstream, kind: str
) -> None:
    """An upstream that, its client gone, sends nothing but comments or pings (bytes, never
    output) is not read on forever: read_timeout_sec after the last output the box hangs up,
    charges what it saw and frees the hold."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    chatter = b": still here\n\n" if kind == "ho" else anthropic_event({"type": "ping"})
    hostile.default = Act(200, [*stream_of(kind, end=False), *paced([chatter] * 100, 0.2)], SSE)
    leave_after_first_bytes(box, key, "chat", kind)
    assert hostile.client_gone.wait(8)
    row = settled_row(box, email)
    assert (row["status"], row["estimated"]) == ("abandoned", 1), row
    assert 0 < row["cost_nanos"] <= row["hold_nanos"]
    assert box.balance_nanos(email) == (start - row["cost_nanos"], 0)
    assert box.open_holds() == 0


def pings_forever() -> Act:
    """An Anthropic stream that opens (message_start), then pings every 0.2 s for 20 s."""
    ping = anthropic_event({"type": "ping"})
    return Act(200, [anthropic_stream(end=False)[0], *paced([ping] * 100, 0.2)], SSE)


@pytest.mark.parametrize("route", ROUTES)
def test_an_anthropic_stream_that_pings_and_never_starts_is_a_504_in_time(
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    """An Anthropic upstream that opens its stream and then only pings, never starting content:
    the box waits for content before answering (an error before it is still retried on another
    key), but not for ever: read_timeout_sec (1 s) without content is an upstream gone silent,
    a 504 that costs nothing. The box waited as long as the pings came (here 20 s, for ever
    from an endless one), the client getting nothing, the user's credit held."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    hostile.default = pings_forever()
    began = time.monotonic()
    answer = box.post(key, route, "ha", stream=True)
    assert time.monotonic() - began < 5
    assert answer.status_code == 504, answer.text
    assert "did not start its answer in time" in answer.text
    assert hostile.client_gone.wait(5)
    assert_free(box, email, start, "upstream_timeout")


def test_an_anthropic_stream_that_never_starts_is_not_read_on_for_ever_once_its_client_left(
    box: HostileBox, hostile: HostileUpstream
) -> None:
    """The same upstream, the client gone before the box answered: the box hangs up on it
    read_timeout_sec after it opened, the call free, no hold left."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    hostile.default = pings_forever()
    body: dict[str, Any] = {"model": "ha/m", "stream": True, "max_tokens": 100,
                            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    with box.http(key) as client, pytest.raises(httpx.ReadTimeout):
        client.post(PATHS["messages"], json=body, timeout=httpx.Timeout(10, read=0.5))
    assert hostile.client_gone.wait(8)
    settled_row(box, email)
    assert_free(box, email, start, "upstream_timeout")
    assert box.open_holds() == 0


REFUSED_KEY = (
    b'{"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}'
)
FAILURES = {  # an upstream's answer before any byte -> the status the client gets, its row's code
    "500": (Act(500, [b'{"error": {"message": "boom", "type": "api_error"}}']), 502,
            "upstream_error"),
    "429": (Act(429, [b'{"error": {"message": "slow down", "type": "rate_limit_error"}}'],
                headers={"retry-after": "9"}), 429, "rate_limited"),
    "529": (Act(529, [b'{"type": "error", "error": {"type": "overloaded_error", '
                      b'"message": "Overloaded"}}']), 503, "upstream_overloaded"),
}  # fmt: skip


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("failure", FAILURES)
def test_a_failure_before_any_byte_is_retried_then_answered_in_the_routes_shape_for_free(
    box: HostileBox, hostile: HostileUpstream, failure: str, route: str, kind: str, stream: bool
) -> None:
    """500, 429 (Retry-After kept) and Anthropic's 529 on every try: the call goes to the
    provider's other key, max_retries times, then the client gets 502, 429 or 503 in its route's
    error shape (Anthropic's on /v1/messages), nothing is charged and no credit stays held."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    act, status, code = FAILURES[failure]
    hostile.default = act
    answer = box.post(key, route, kind, stream)
    assert answer.status_code == status, answer.text
    assert len(hostile.seen) == 1 + RETRIES
    assert {seen.key[-4:] for seen in hostile.seen} == {"0001", "0002"}
    error = answer.json()
    assert (error["type"] == "error") if route == "messages" else ("code" in error["error"])
    if status == 429:
        assert answer.headers["retry-after"] == "9"
    assert_free(box, email, start, code)
    assert box.open_holds() == 0


@pytest.mark.parametrize("route", ROUTES)
def test_an_anthropic_key_refused_leaves_the_rotation_and_a_probe_brings_it_back(
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    """A 401 to one Anthropic key, confirmed by its probe: the call is answered by the other key
    (charged once), the refused key is out of rotation, and once its probe works again (every
    key_probe_sec, 0.5 s) it is back."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    refused = "sk-ha-key-0001"
    hostile.default = body_of("ha")
    hostile.key_acts[refused] = Act(401, [REFUSED_KEY])
    hostile.probe_status[refused] = 401
    for _ in range(3):
        assert box.post(key, route, "ha", stream=False).status_code == 200
    assert [seen.key for seen in hostile.seen].count(refused) <= 1
    assert len(box.usage_rows(email)) == 3
    assert box.balance_nanos(email)[0] == start - sum(
        r["cost_nanos"] for r in box.usage_rows(email)
    )
    hostile.key_acts.clear()
    hostile.probe_status.clear()
    deadline = time.monotonic() + 5
    while refused not in [seen.key for seen in hostile.seen[-2:]]:
        assert time.monotonic() < deadline, "the key never came back"
        assert box.post(key, route, "ha", stream=False).status_code == 200
        time.sleep(0.1)


@pytest.fixture
def elsewhere() -> Iterator[HostileUpstream]:
    """Another origin (its own port), where a redirect points."""
    server = HostileUpstream().start()
    yield server
    server.stop()


@pytest.mark.parametrize("status", [307, 308, 302])
@pytest.mark.parametrize("kind", KINDS)
def test_a_redirect_is_a_502_and_never_followed_with_the_key(
    box: HostileBox, hostile: HostileUpstream, elsewhere: HostileUpstream, kind: str, status: int
) -> None:
    """An upstream that answers with a redirect (a moved API, a proxy, a captive portal) is not
    followed: a 307 or 308 to another origin was, with the body and the operator's Anthropic
    key in x-api-key (only Authorization is dropped across origins), and a 302 was turned into
    a GET whose 405 the user got. Now it is a 502 that names the redirect, nothing charged,
    and the other origin sees nothing."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    path = "/v1/chat/completions" if kind == "ho" else "/v1/messages"
    target = f"http://127.0.0.1:{elsewhere.port}{path}"
    hostile.default = Act(status, [b""], headers={"location": target})
    elsewhere.default = body_of(kind)
    answer = box.post(key, "chat", kind, stream=False)
    assert elsewhere.seen == []
    assert answer.status_code == 502, answer.text
    assert f"HTTP {status}" in answer.text and "redirect" in answer.text
    assert_free(box, email, start, "upstream_redirect")


@pytest.mark.parametrize("route", ROUTES)
def test_an_oversized_event_right_after_content_starts_ends_the_stream_not_the_call(
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    """An Anthropic stream whose content starts and whose next event is past
    max_sse_event_bytes, all in one read longer than max_upstream_body_bytes: the stream was
    started, so the client gets its start and an error event that names the event limit (the
    wait for content took the read's length for a body before any answer: a 502)."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    whole = anthropic_stream()
    huge = anthropic_event({"type": "content_block_delta", "index": 0,
                            "delta": {"type": "text_delta", "text": "y" * BODY_LIMIT}})  # fmt: skip
    hostile.default = Act(200, [b"".join([*whole[:3], huge, *whole[3:]])], SSE)
    answer = box.post(key, route, "ha", stream=True)
    assert answer.status_code == 200, answer.text
    assert_ends_with_error(route, answer.text, "max_sse_event_bytes")
    assert_free(box, email, start, "upstream_too_large")


@pytest.fixture(scope="module")
def stuck_provider(box: HostileBox) -> Iterator[str]:
    """An `anthropic` provider (two keys) whose address takes no connection: a listener that
    never accepts, its queue full, so a connect waits (SYNs dropped) until it times out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    queued = [socket.socket() for _ in range(4)]
    for waiting in queued:
        waiting.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            waiting.connect(("127.0.0.1", port))
    box.cli("providers", "add", "stuck", "--kind", "anthropic", "--base-url",
            f"http://127.0.0.1:{port}", "--key", "sk-stuck-key-0001")  # fmt: skip
    box.cli("providers", "key-add", "stuck", "--key", "sk-stuck-key-0002")
    box.cli("models", "set", "stuck/m", "--provider", "stuck", "--upstream-model", "m", *PRICES)
    box.until_served("stuck/m")
    yield "stuck"
    for item in (*queued, listener):
        item.close()


@pytest.mark.parametrize("route", ROUTES)
def test_a_connect_timeout_is_retried_then_a_free_504(
    box: HostileBox, stuck_provider: str, route: str
) -> None:
    """An upstream that takes no connection within connect_timeout_sec (1 s): tried on each
    key, 1 + max_retries times, then a 504 in the route's shape; nothing charged, no hold."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    began = time.monotonic()
    answer = box.post(key, route, stuck_provider, stream=route != "chat")
    assert 1 + RETRIES - 0.5 < time.monotonic() - began < 10
    assert answer.status_code == 504, answer.text
    assert "could not connect to the upstream in time" in answer.text
    assert_free(box, email, start, "upstream_timeout")
    assert box.open_holds() == 0


@pytest.mark.parametrize("kind", KINDS)
def test_a_proxys_html_error_page_is_named_by_its_title_for_both_kinds(
    box: HostileBox, hostile: HostileUpstream, kind: str
) -> None:
    """A proxy's HTML error page in front of the provider (nginx's 502): the client's 502 names
    the page by its title, for an `anthropic` provider too (it said only "Anthropic API error
    502", where an `openai` one said what answered)."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    page = b"<html><head><title>502 Bad Gateway</title></head><body><hr>nginx</body></html>"
    hostile.default = Act(502, [page], content_type="text/html")
    answer = box.post(key, "messages", kind, stream=False)
    assert answer.status_code == 502, answer.text
    assert "an HTML page: 502 Bad Gateway" in answer.json()["error"]["message"]
    assert "<" not in answer.json()["error"]["message"]
    assert_free(box, email, start, "upstream_error")
