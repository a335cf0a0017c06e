"""Upstreams that misbehave before an answer or in a whole (non-streamed) one, on every
inference route, to both kinds of provider (the box: tests/hostile/conftest.py): failures before
any byte retried on the other key then answered in the route's shape for free, a refused key
out of rotation and back, a redirect, a connection that cannot be made, a proxy's HTML page, a
200 that is no answer or carries no usage."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.fakes.hostile_upstream import (
    Act,
    HostileUpstream,
    anthropic_body,
    responses_body,
)
from tests.hostile.conftest import (
    BODY_LIMIT,
    KEYS,
    KINDS,
    PRICES,
    RETRIES,
    ROUTES,
    HostileBox,
    assert_free,
    body_of,
    until_the_key_is_back,
)

pytestmark = pytest.mark.timeout(60)


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
    provider's other key, max_retries times (a 429: each key once, as the same key would answer
    the same), then the client gets 502, 429 or 503 in its route's error shape (Anthropic's on
    /v1/messages), nothing is charged and no credit stays held."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    act, status, code = FAILURES[failure]
    hostile.default = act
    answer = box.post(key, route, kind, stream)
    assert answer.status_code == status, answer.text
    assert len(hostile.seen) == (KEYS if status == 429 else 1 + RETRIES)
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
    until_the_key_is_back(box, hostile, key, route, "ha", refused)


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


@pytest.mark.parametrize(
    ("answer", "status", "words"),
    [
        (responses_body(usage=False), 200, ""),
        (
            b'{"error": {"message": "boom", "type": "server_error"}}',
            502,
            "the upstream failed: boom",
        ),
    ],
    ids=["no-usage", "error-body"],
)
def test_a_native_responses_answer_without_usage_is_charged_an_estimate_not_refused(
    box: HostileBox, hostile: HostileUpstream, answer: bytes, status: int, words: str
) -> None:
    """A provider serving the Responses API itself (`--responses-api`) that leaves `usage` out
    of a whole answer did the work: the client gets the answer and the call is charged the
    box's count, marked estimated, as a streamed one already was and as every other answer
    without usage is (it was a 502 'answered without usage': no answer, nothing charged,
    every time, from such a server). A 200 that is an error body names the error (it said
    'without a response')."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    hostile.default = Act(200, [answer])
    reply = box.post(key, "responses", "hr", stream=False)
    assert reply.status_code == status, reply.text
    assert words in reply.text
    row = box.last_row(email)
    if status == 200:
        assert reply.json()["output"][0]["content"][0]["text"].startswith("Hello there")
        assert reply.json()["usage"]["input_tokens"] == row["input_tokens"] > 0
        assert (row["status"], row["estimated"]) == ("ok", 1), row
        assert 0 < row["cost_nanos"] <= row["hold_nanos"]
    assert box.balance_nanos(email) == (start - row["cost_nanos"], 0)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("answer", "content_type", "words"),
    [
        (b'{"error": {"message": "model is loading", "type": "server_error"}}',
         "application/json", "model is loading"),
        (b"<html><head><title>Access denied</title></head><body></body></html>",
         "text/html", "an HTML page: Access denied"),
    ],
    ids=["json-error", "html-page"],
)  # fmt: skip
def test_a_stream_request_answered_with_no_stream_says_what_came_instead(
    box: HostileBox,
    hostile: HostileUpstream,
    kind: str,
    answer: bytes,
    content_type: str,
    words: str,
) -> None:
    """A 200 to a stream request that is no stream (a JSON error body, a proxy's or firewall's
    HTML page): a free 502 that says what came and what it said, where it said only 'the
    upstream stream ended before it was complete'."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    hostile.default = Act(200, [answer], content_type=content_type)
    reply = box.post(key, "chat", kind, stream=True)
    assert reply.status_code == 502, reply.text
    message = reply.json()["error"]["message"]
    assert words in message and content_type in message, message
    assert_free(box, email, start, "upstream_error")


def oversized_answer(kind: str) -> bytes:
    """A whole answer of the provider's kind past the box's body limit, its usage last (7
    input and 3 output tokens, as the providers write it)."""
    answer = json.loads(body_of(kind).writes[0])  # type: ignore[arg-type]
    if kind == "ho":
        answer["choices"][0]["message"]["content"] = "x" * 2 * BODY_LIMIT
    else:
        answer["content"][0]["text"] = "x" * 2 * BODY_LIMIT
    answer["usage"] = answer.pop("usage")
    return json.dumps(answer).encode()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_a_charged_502_says_what_it_cost(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str
) -> None:
    """An answer too large to relay is charged the provider's count (the work was done), but
    its 502 said nothing of it: the client could not see what it paid. It carries
    `x-codelace-cost-usd`, as a 200 does, in every route's error shape."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    hostile.default = Act(200, [oversized_answer(kind)])
    reply = box.post(key, route, kind, stream=False)
    assert reply.status_code == 502, reply.text
    assert "upstream_too_large" in reply.text or route == "messages", reply.text
    row = box.last_row(email)
    assert (row["status"], row["error_code"]) == ("error", "upstream_too_large"), row
    assert (row["input_tokens"], row["output_tokens"]) == (7, 3), row
    assert row["cost_nanos"] > 0
    assert box.balance_nanos(email) == (start - row["cost_nanos"], 0)
    assert Decimal(reply.headers["x-codelace-cost-usd"]) == Decimal(row["cost_nanos"]) / 10**9


@pytest.mark.parametrize("route", ROUTES)
def test_a_free_502_carries_no_cost(box: HostileBox, hostile: HostileUpstream, route: str) -> None:
    hostile.default = Act(200, [b"[]"])
    _, key = box.new_user("10")
    reply = box.post(key, route, "ho", stream=False)
    assert reply.status_code == 502, reply.text
    assert "x-codelace-cost-usd" not in reply.headers


@pytest.mark.parametrize("kind", KINDS)
def test_the_operators_refused_keys_are_said_at_once_to_claude_code(
    box: HostileBox, hostile: HostileUpstream, kind: str
) -> None:
    """Every key of the provider refused on calls (401) while its probe works: the keys stay
    in rotation and every call is refused again, so a retry changes nothing within minutes, as
    for a disabled provider. The 503 said overloaded_error, which Claude Code retries ten times
    over two minutes, silent in `claude -p`: it is an api_error with `x-should-retry: false`."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    for provider_key in (f"sk-{kind}-key-0001", f"sk-{kind}-key-0002"):
        hostile.key_acts[provider_key] = Act(401, [REFUSED_KEY])
    answer = box.post(key, "messages", kind, stream=False)
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["type"] == "api_error", answer.text
    assert answer.headers.get("x-should-retry") == "false"
    assert_free(box, email, start, "provider_key_rejected")
    hostile.key_acts.clear()  # each key answers once: its refusals since its probe forgotten
    hostile.default = body_of(kind)
    for _ in range(2):
        assert box.post(key, "chat", kind, stream=False).status_code == 200
