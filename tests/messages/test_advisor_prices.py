"""/v1/messages with Anthropic's advisor tool: the advisor model's calls are charged at that
model's own catalog prices. Anthropic reports each advisor call in `usage.iterations` (an
`advisor_message` with its own counts) and bills it at the advisor model's rates; the box
charged them at the requested model's, so a Sonnet call with an Opus advisor undercharged the
user and the operator paid the difference. The advisor model must now be in the catalog
(same provider, its upstream name), the key must be allowed to call it, the hold covers its
tokens at its own prices, and the usage row records what they were charged at."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from codelace_box.money import usd_text
from tests.fakes.anthropic_upstream import Reply
from tests.messages.conftest import (
    ALIAS,
    MODEL,
    NEEDS_SDK,
    PRICES,
    MessagesBox,
    advisor_allowed,
    usd_nanos,
)
from tests.support import TLS

pytestmark = NEEDS_SDK

OPUS = "anthropic/claude-opus-4.6"
OPUS_UPSTREAM = "claude-opus-4-6"
OPUS_PRICES = {"in": "5", "out": "25", "read": "0.5", "write": "6.25", "write_1h": "10"}
BETA = {"anthropic-beta": "advisor-tool-2026-03-01"}
# The executor's own counts (the `message` iteration) and the advisor's (5m and 1h writes)
EXECUTOR = {"input_tokens": 1000, "cache_read_input_tokens": 2000,
            "cache_creation_input_tokens": 500, "output_tokens": 300}  # fmt: skip
ADVISOR = {"model": OPUS_UPSTREAM, "input_tokens": 4000, "cache_read_input_tokens": 1000,
           "cache_creation_input_tokens": 3000, "output_tokens": 700,
           "cache_creation": {"ephemeral_5m_input_tokens": 1000,
                              "ephemeral_1h_input_tokens": 2000}}  # fmt: skip


@pytest.fixture(scope="module")
def advised(box: MessagesBox) -> Iterator[MessagesBox]:
    """The box with the advisor allowed and Opus in the catalog, for the module."""
    with advisor_allowed(box, OPUS, OPUS_UPSTREAM, OPUS_PRICES) as allowed:
        yield allowed


def advisor_tool(model: str = OPUS_UPSTREAM, max_uses: int = 2) -> dict[str, Any]:
    return {"type": "advisor_20260301", "name": "advisor", "model": model,
            "max_uses": max_uses, "max_tokens": 1000}  # fmt: skip


def body(stream: bool = False, tool: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"model": ALIAS, "max_tokens": 300, "stream": stream, "tools": [tool or advisor_tool()],
            "messages": [{"role": "user", "content": "Plan the migration."}]}  # fmt: skip


def post(box: MessagesBox, key: str, sent: object, path: str = "/v1/messages") -> httpx.Response:
    head = {"x-api-key": key, "anthropic-version": "2023-06-01", **BETA}
    return httpx.post(f"{box.server.base_url}{path}?beta=true", json=sent, headers=head,
                      timeout=30, verify=TLS)  # fmt: skip


def answer_with_advisor() -> Reply:
    return Reply(text="Done.", input_tokens=EXECUTOR["input_tokens"],
                 cache_read_input_tokens=EXECUTOR["cache_read_input_tokens"],
                 cache_creation_input_tokens=EXECUTOR["cache_creation_input_tokens"],
                 output_tokens=EXECUTOR["output_tokens"], advisor=dict(ADVISOR))  # fmt: skip


def expected_cost() -> int:
    """The executor's tokens at the Sonnet prices, the advisor's at Opus's, rounded up once."""
    return usd_nanos(
        (1000, PRICES["in"]), (2000, PRICES["read"]), (500, PRICES["write"]),
        (300, PRICES["out"]),
        (4000, OPUS_PRICES["in"]), (1000, OPUS_PRICES["read"]), (1000, OPUS_PRICES["write"]),
        (2000, OPUS_PRICES["write_1h"]), (700, OPUS_PRICES["out"]),
    )  # fmt: skip


def nanos_of(usd: str) -> int:
    return usd_nanos((1_000_000, usd))


@pytest.mark.parametrize("stream", [False, True])
def test_advisor_calls_are_charged_at_the_advisor_models_prices(
    fresh_advised: MessagesBox, stream: bool
) -> None:
    box = fresh_advised
    email, key = box.new_key()
    before, _ = box.balance_nanos(email)
    box.fake.script(answer_with_advisor())
    answer = post(box, key, body(stream))
    assert answer.status_code == 200, answer.text
    cost = expected_cost()
    at_sonnet_prices = usd_nanos((1000 + 4000, PRICES["in"]), (2000 + 1000, PRICES["read"]),
                                 (500 + 1000, PRICES["write"]), (2000, PRICES["write_1h"]),
                                 (300 + 700, PRICES["out"]))  # fmt: skip
    assert cost > at_sonnet_prices  # (the test tells the two apart)
    row = box.usage_rows(email)[-1]
    assert row["cost_nanos"] == cost
    assert box.balance_nanos(email) == (before - cost, 0)
    assert row["hold_nanos"] >= cost
    # the totals keep counting every token, the advisor's too
    assert row["input_tokens"] == 1000 + 2000 + 500 + 4000 + 1000 + 3000
    assert row["output_tokens"] == 300 + 700
    assert (row["cache_read_tokens"], row["cache_write_tokens"]) == (2000 + 1000, 500 + 3000)
    assert row["cache_write_1h_tokens"] == 2000
    # the executor's prices as before, and the advisor's own, with its tokens
    assert (row["input_per_1m_nanos"], row["output_per_1m_nanos"]) == (
        nanos_of(PRICES["in"]), nanos_of(PRICES["out"]))  # fmt: skip
    assert row["advisor_model"] == OPUS
    assert (row["advisor_input_tokens"], row["advisor_output_tokens"]) == (8000, 700)
    assert (row["advisor_cache_read_tokens"], row["advisor_cache_write_tokens"],
            row["advisor_cache_write_1h_tokens"]) == (1000, 3000, 2000)  # fmt: skip
    prices = ("advisor_input_per_1m_nanos", "advisor_output_per_1m_nanos",
              "advisor_cache_read_per_1m_nanos", "advisor_cache_write_per_1m_nanos",
              "advisor_cache_write_1h_per_1m_nanos")  # fmt: skip
    assert [row[name] for name in prices] == [
        nanos_of(OPUS_PRICES[p]) for p in ("in", "out", "read", "write", "write_1h")
    ]
    if not stream:
        assert answer.headers["x-codelace-cost-usd"] == usd_text(cost)


def test_a_call_without_the_advisor_records_none(fresh_advised: MessagesBox) -> None:
    box = fresh_advised
    email, key = box.new_key()
    box.fake.script(Reply(text="Hi.", input_tokens=10, output_tokens=5))
    plain = {"model": ALIAS, "max_tokens": 50, "messages": [{"role": "user", "content": "Hi"}]}
    answer = post(box, key, plain)
    assert answer.status_code == 200, answer.text
    row = box.usage_rows(email)[-1]
    assert row["advisor_model"] is None and row["advisor_input_per_1m_nanos"] is None
    assert row["cost_nanos"] == usd_nanos((10, PRICES["in"]), (5, PRICES["out"]))


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_an_advisor_model_not_in_the_catalog_is_refused(
    fresh_advised: MessagesBox, path: str
) -> None:
    """Nothing to charge its calls at: a 400 in Anthropic's shape that names the model and
    says the operator must add it; no upstream call, nothing held or charged."""
    box = fresh_advised
    email, key = box.new_key()
    before = box.balance_nanos(email)
    answer = post(box, key, body(tool=advisor_tool("claude-opus-9-9")), path)
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    message = error["error"]["message"]
    assert "claude-opus-9-9" in message and "catalog" in message and "operator" in message
    assert box.fake.requests == []
    assert box.balance_nanos(email) == before and box.usage_rows(email) == []


def test_a_disabled_advisor_model_is_refused(fresh_advised: MessagesBox) -> None:
    box = fresh_advised
    email, key = box.new_key()
    before = box.balance_nanos(email)
    box.cli("models", "disable", OPUS)
    box.until_reloaded()
    try:
        answer = post(box, key, body())
    finally:
        box.cli("models", "enable", OPUS)
        box.until_reloaded()
    assert answer.status_code == 400, answer.text
    assert OPUS_UPSTREAM in answer.json()["error"]["message"]
    assert box.fake.requests == [] and box.balance_nanos(email) == before


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_a_key_limited_to_other_models_may_not_consult_the_advisor(
    fresh_advised: MessagesBox, path: str
) -> None:
    box = fresh_advised
    email, _ = box.new_key()
    limited = box.cli("keys", "create", email, "--models", MODEL).strip().splitlines()[0]
    answer = post(box, limited, body(), path)
    assert answer.status_code == 403, answer.text
    error = answer.json()["error"]
    assert error["type"] == "permission_error" and OPUS in error["message"]
    assert box.fake.requests == [] and box.balance_nanos(email)[1] == 0
    both = box.cli("keys", "create", email, "--models", f"{MODEL},{OPUS}").strip().splitlines()[0]
    if path == "/v1/messages":
        box.fake.script(answer_with_advisor())
    assert post(box, both, body(), path).status_code == 200


def test_the_hold_covers_the_advisor_at_its_own_prices(fresh_advised: MessagesBox) -> None:
    """One more advisor call holds the window read at Opus's dearest input price (its 1-hour
    cache write) and its max_tokens at Opus's output price; a balance that covers the hold
    only as it would be at the executor's prices is refused (402)."""
    box = fresh_advised
    email, key = box.new_key("100")
    holds = []
    for uses in (1, 2):  # same body length: only the number of advisor calls differs
        box.fake.script(answer_with_advisor())
        answer = post(box, key, body(tool=advisor_tool(max_uses=uses)))
        assert answer.status_code == 200, answer.text
        holds.append(box.usage_rows(email)[-1]["hold_nanos"])
    window = 200_000  # gateway.default_context_tokens: the model sets no context
    one_call = usd_nanos((window, OPUS_PRICES["write_1h"]), (1000, OPUS_PRICES["out"]))
    assert holds[1] - holds[0] == one_call
    at_sonnet = usd_nanos((window, PRICES["write_1h"]), (1000, PRICES["out"]))
    short, short_key = box.new_key(usd_text(holds[0] - one_call + at_sonnet))
    refused = post(box, short_key, body(tool=advisor_tool(max_uses=1)))
    assert refused.status_code == 402, refused.text
    assert refused.json()["error"]["type"] == "billing_error"
    assert box.balance_nanos(short)[1] == 0 and box.usage_rows(short) == []
    _, enough_key = box.new_key(usd_text(holds[0]))
    box.fake.script(answer_with_advisor())
    assert post(box, enough_key, body(tool=advisor_tool(max_uses=1))).status_code == 200


def test_advisor_calls_reading_the_window_are_charged_in_full(fresh_advised: MessagesBox) -> None:
    """Each advisor call reads the whole transcript (up to the window) and writes up to the
    tool's max_tokens, on top of the executor's own loop; the hold holds them all."""
    box = fresh_advised
    email, key = box.new_key()
    advisor = {"model": OPUS_UPSTREAM, "input_tokens": 0, "output_tokens": 3600,
               "cache_read_input_tokens": 0, "cache_creation_input_tokens": 380_000,
               "cache_creation": {"ephemeral_5m_input_tokens": 0,
                                  "ephemeral_1h_input_tokens": 380_000}}  # fmt: skip
    box.fake.script(Reply(text="Done.", input_tokens=0, output_tokens=1000,
                          cache_creation_input_tokens=1_700_000,
                          cache_creation_1h_tokens=1_700_000, advisor=advisor))  # fmt: skip
    tool = advisor_tool() | {"max_tokens": 2048}
    answer = post(box, key, {**body(tool=tool), "max_tokens": 100})
    assert answer.status_code == 200, answer.text
    row = box.usage_rows(email)[-1]
    cost = usd_nanos((1_700_000, PRICES["write_1h"]), (1000, PRICES["out"]),
                     (380_000, OPUS_PRICES["write_1h"]), (3600, OPUS_PRICES["out"]))  # fmt: skip
    assert row["cost_nanos"] == cost
    assert row["hold_nanos"] >= cost


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/responses"])
def test_the_advisor_tool_reaches_anthropic_by_the_messages_api_only(
    fresh_advised: MessagesBox, path: str
) -> None:
    """Translated to Anthropic, chat completions and the Responses API take function tools
    only: an advisor tool there is a 400, never a call whose advisor is not priced."""
    box = fresh_advised
    email, key = box.new_key()
    before = box.balance_nanos(email)
    said = {"messages": [{"role": "user", "content": "Plan."}]}
    if path == "/v1/responses":
        said = {"input": "Plan."}
    sent = {"model": MODEL, "max_tokens": 50, **said, "tools": [advisor_tool()]}
    if path == "/v1/responses":
        sent["max_output_tokens"] = sent.pop("max_tokens")
    answer = httpx.post(f"{box.server.base_url}{path}", json=sent,
                        headers={"authorization": f"Bearer {key}"}, timeout=30,
                        verify=TLS)  # fmt: skip
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert box.fake.requests == [] and box.balance_nanos(email) == before
