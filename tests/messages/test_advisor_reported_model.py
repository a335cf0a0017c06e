"""/v1/messages with Anthropic's advisor tool: each advisor call's `usage.iterations` entry (an
`advisor_message`) names the model that ran it. The box charged those tokens at the named
advisor's catalog prices whatever model the iteration reported, so an advisor priced below the
requested model in some kind (here its input and cache prices) undercharged whenever the
provider ran, and billed, another model. Now a reported model other than the one the tool named
is charged at the dearer of the advisor's and the requested model's prices, kind by kind, the
hold covers that, and the server log warns with the request id and both names; a dated id of
the named model (`claude-opus-4-5` reported as `claude-opus-4-5-20251101`) is the same model
and changes nothing. Real box, fake Anthropic upstream reporting the iterations."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.anthropic_upstream import Reply
from tests.messages.conftest import (
    ALIAS,
    NEEDS_SDK,
    PRICES,
    MessagesBox,
    advisor_allowed,
    usd_nanos,
)
from tests.support import TLS

pytestmark = NEEDS_SDK

ADVISOR = "anthropic/claude-opus-4.5"
ADVISOR_UPSTREAM = "claude-opus-4-5"
# The operator's prices of the advisor: below the requested model's (PRICES) for input and the
# cache, above it for output, so the kind-by-kind dearer set differs from both.
ADVISOR_PRICES = {"in": "2", "out": "20", "read": "0.2", "write": "2.5", "write_1h": "4"}
DEARER = {kind: max(PRICES[kind], ADVISOR_PRICES[kind], key=float) for kind in ADVISOR_PRICES}
KINDS = ("in", "out", "read", "write", "write_1h")
COLUMNS = ("input", "output", "cache_read", "cache_write", "cache_write_1h")
PRICE_COLUMNS = tuple(f"advisor_{column}_per_1m_nanos" for column in COLUMNS)
BETA = {"anthropic-beta": "advisor-tool-2026-03-01"}
ADVISOR_COUNTS = {"input_tokens": 4000, "cache_read_input_tokens": 1000,
                  "cache_creation_input_tokens": 3000, "output_tokens": 700,
                  "cache_creation": {"ephemeral_5m_input_tokens": 1000,
                                     "ephemeral_1h_input_tokens": 2000}}  # fmt: skip


@pytest.fixture(scope="module")
def advised(box: MessagesBox) -> Iterator[MessagesBox]:
    """The box with the advisor allowed and ADVISOR in the catalog, for the module."""
    with advisor_allowed(box, ADVISOR, ADVISOR_UPSTREAM, ADVISOR_PRICES) as allowed:
        yield allowed


def body(stream: bool = False, max_uses: int = 2) -> dict[str, Any]:
    tool = {"type": "advisor_20260301", "name": "advisor", "model": ADVISOR_UPSTREAM,
            "max_uses": max_uses, "max_tokens": 1000}  # fmt: skip
    return {"model": ALIAS, "max_tokens": 300, "stream": stream, "tools": [tool],
            "messages": [{"role": "user", "content": "Plan the migration."}]}  # fmt: skip


def post(box: MessagesBox, key: str, sent: dict[str, Any]) -> httpx.Response:
    head = {"x-api-key": key, "anthropic-version": "2023-06-01", **BETA}
    return httpx.post(f"{box.server.base_url}/v1/messages?beta=true", json=sent, headers=head,
                      timeout=30, verify=TLS)  # fmt: skip


def reply(reported: str) -> Reply:
    """The executor's own counts, and one advisor call that reports `reported` as its model."""
    return Reply(text="Done.", input_tokens=1000, output_tokens=300,
                 advisor={"model": reported, **ADVISOR_COUNTS})  # fmt: skip


def cost_at(prices: dict[str, str]) -> int:
    """The executor's tokens at the requested model's prices, the advisor's at `prices`."""
    return usd_nanos(
        (1000, PRICES["in"]), (300, PRICES["out"]),
        (4000, prices["in"]), (1000, prices["read"]), (1000, prices["write"]),
        (2000, prices["write_1h"]), (700, prices["out"]),
    )  # fmt: skip


def advised_call(box: MessagesBox, reported: str, stream: bool) -> tuple[dict[str, Any], str]:
    """One call whose advisor iteration reports `reported`: its usage row and request id."""
    email, key = box.new_key()
    box.fake.script(reply(reported))
    answer = post(box, key, body(stream))
    assert answer.status_code == 200, answer.text
    if stream:
        assert "message_stop" in answer.text
    return box.usage_rows(email)[-1], answer.headers["x-request-id"]


@pytest.mark.parametrize("stream", [False, True])
def test_another_reported_model_is_charged_at_the_dearer_prices_and_logged(
    fresh_advised: MessagesBox, stream: bool
) -> None:
    box = fresh_advised
    assert cost_at(DEARER) > cost_at(ADVISOR_PRICES)  # (the test tells the two apart)
    row, request_id = advised_call(box, "claude-opus-4-6", stream)
    assert row["cost_nanos"] == cost_at(DEARER)
    assert row["hold_nanos"] >= row["cost_nanos"]
    # the row records the prices the advisor's tokens were charged at, and its catalog model
    assert row["advisor_model"] == ADVISOR
    assert [row[c] for c in PRICE_COLUMNS] == [usd_nanos((10**6, DEARER[k])) for k in KINDS]
    assert (row["advisor_input_tokens"], row["advisor_output_tokens"]) == (8000, 700)
    box.server.wait_for_log(rf"request {request_id}: .*'claude-opus-4-6'.*'{ADVISOR_UPSTREAM}'")


@pytest.mark.parametrize("stream", [False, True])
def test_a_dated_id_of_the_named_advisor_is_the_same_model(
    fresh_advised: MessagesBox, stream: bool
) -> None:
    """Anthropic may answer with the dated id an alias resolves to: charged at the advisor's
    prices, and no warning (checked once a later mismatch's warning is in the log)."""
    box = fresh_advised
    row, request_id = advised_call(box, f"{ADVISOR_UPSTREAM}-20251101", stream)
    assert row["cost_nanos"] == cost_at(ADVISOR_PRICES)
    assert [row[c] for c in PRICE_COLUMNS] == [usd_nanos((10**6, ADVISOR_PRICES[k])) for k in KINDS]
    _, later = advised_call(box, "claude-opus-4-6", stream)
    box.server.wait_for_log(rf"request {later}: ")
    assert not re.search(rf"request {request_id}: ", box.server.log_text())


def test_the_hold_covers_the_advisor_at_the_dearer_prices(fresh_advised: MessagesBox) -> None:
    """One more advisor call holds the window read at the dearest input price of either model
    (here the requested model's 1-hour cache write) and its max_tokens at the dearer output
    price (here the advisor's): what a reported model other than the named one is charged."""
    box = fresh_advised
    email, key = box.new_key("100")
    holds = []
    for uses in (1, 2):  # same body length: only the number of advisor calls differs
        box.fake.script(reply(ADVISOR_UPSTREAM))
        answer = post(box, key, body(max_uses=uses))
        assert answer.status_code == 200, answer.text
        holds.append(box.usage_rows(email)[-1]["hold_nanos"])
    window = 200_000  # gateway.default_context_tokens: the model sets no context
    one_call = usd_nanos((window, DEARER["write_1h"]), (1000, DEARER["out"]))
    assert one_call > usd_nanos((window, ADVISOR_PRICES["write_1h"]), (1000, DEARER["out"]))
    assert holds[1] - holds[0] == one_call
