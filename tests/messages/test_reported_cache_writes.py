"""Cache writes an `openai`-kind upstream reports are billed as cache writes, on every route.

OpenRouter (and a codelace-box in front of another one) report prompt-cache writes in the Chat
Completions usage as `prompt_tokens_details.cache_write_tokens`, and native Responses upstreams
as `input_tokens_details.cache_write_tokens`, both parts of the prompt tokens, as `cached_tokens`
are. The box showed that count to the client, yet billed those tokens at the input price and
recorded no cache writes in the usage row: the answer and the bill disagreed, and the operator
(billed by the provider at the write price) lost the difference.

OpenRouter gives those writes without Anthropic's 5-minute/1-hour split: when every
`cache_control` the box sent up asks `ttl: "1h"`, they are all 1-hour writes and billed at the
1-hour price; a request that mixes lifetimes (or whose `cache_control` the box does not send,
as the Messages route's translation) keeps the 5-minute price, the box cannot tell more.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import OPENAI_KEY, MessagesBox, usd_nanos
from tests.support import TLS

MODEL = "oai/router-claude"
NATIVE_MODEL = "oair/router-claude"
PRICES = {"in": "3", "out": "15", "read": "0.3", "write": "3.75", "write_1h": "6"}
SET_PRICES = (
    "--input-per-1m",
    PRICES["in"],
    "--output-per-1m",
    PRICES["out"],
    "--cache-read-per-1m",
    PRICES["read"],
    "--cache-write-per-1m",
    PRICES["write"],
    "--cache-write-1h-per-1m",
    PRICES["write_1h"],
)
# 1,000 prompt tokens: 300 read from the cache, 200 written to it, 500 neither; 50 output
# tokens, 20 of them reasoning (part of the output, billed once).
CHAT_USAGE = {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050,
              "prompt_tokens_details": {"cached_tokens": 300, "cache_write_tokens": 200},
              "completion_tokens_details": {"reasoning_tokens": 20}}  # fmt: skip
RESPONSES_USAGE = {"input_tokens": 1000, "output_tokens": 50, "total_tokens": 1050,
                   "input_tokens_details": {"cached_tokens": 300, "cache_write_tokens": 200},
                   "output_tokens_details": {"reasoning_tokens": 20}}  # fmt: skip
COST = usd_nanos((500, PRICES["in"]), (50, PRICES["out"]), (300, PRICES["read"]),
                 (200, PRICES["write"]))  # fmt: skip
PROMPT = [{"role": "user", "content": "A long, cached prompt. " * 60}]


@pytest.fixture(scope="module")
def catalog(box: MessagesBox) -> MessagesBox:
    """The box with a chat model and a native Responses model, both with a cache-write price."""
    box.cli("models", "set", MODEL, "--provider", "oai", *SET_PRICES)
    box.cli("providers", "add", "oair", "--kind", "openai", "--responses-api", "--base-url",
            box.openai_fake.base_url, "--key", OPENAI_KEY)  # fmt: skip
    box.cli("models", "set", NATIVE_MODEL, "--provider", "oair", "--upstream-model",
            "router-claude", *SET_PRICES)  # fmt: skip
    box.until_served(MODEL, NATIVE_MODEL)
    return box


@pytest.fixture
def priced(catalog: MessagesBox) -> MessagesBox:
    """The module's box with both fakes reset: the package's box is shared, and a reply another
    module scripted (or its `default`) must not answer this module's requests."""
    catalog.fake.reset()
    catalog.openai_fake.reset()
    return catalog


def _json_reply(body: dict[str, Any]) -> Reply:
    return Reply(raw=[json.dumps(body).encode()], content_type="application/json")


def _event(value: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(value).encode() + b"\n\n"


def _chat_answer() -> dict[str, Any]:
    message = {"role": "assistant", "content": "Cached."}
    return {"id": "chatcmpl-c", "object": "chat.completion", "created": 1, "model": "up",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": CHAT_USAGE}  # fmt: skip


def _chat_stream() -> Reply:
    base = {"id": "chatcmpl-c", "object": "chat.completion.chunk", "created": 1, "model": "up"}
    pieces = [
        base | {"choices": [{"index": 0, "delta": {"content": "Cached."}, "finish_reason": None}]},
        base | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        base | {"choices": [], "usage": CHAT_USAGE},
    ]
    return Reply(raw=[*map(_event, pieces), b"data: [DONE]\n\n"])


def _check_bill(
    box: MessagesBox, email: str, before: int, shown: Any, cost: int = COST, hours: int = 0
) -> None:
    """The balance, the usage row and the cost shown all say `cost`, cache writes apart (of
    them `hours` 1-hour writes)."""
    assert box.balance_nanos(email) == (before - cost, 0)
    row = box.usage_rows(email)[-1]
    assert (row["input_tokens"], row["output_tokens"]) == (1000, 50)
    assert (row["cache_read_tokens"], row["cache_write_tokens"]) == (300, 200)
    assert row["cache_write_1h_tokens"] == hours
    assert row["cost_nanos"] == cost
    assert round(Decimal(str(shown)) * 10**9) == cost


@pytest.mark.parametrize("streamed", [False, True])
def test_chat_cache_writes_reported_by_an_openai_upstream_are_billed_at_the_write_price(
    priced: MessagesBox, streamed: bool
) -> None:
    email, key = priced.new_key()
    before, _ = priced.balance_nanos(email)
    priced.openai_fake.push(_chat_stream() if streamed else _json_reply(_chat_answer()))
    client = priced.sdk(key)
    if streamed:
        chunks = list(client.chat.completions.create(
            model=MODEL, messages=PROMPT, stream=True, stream_options={"include_usage": True}
        ))  # fmt: skip
        shown = chunks[-1].usage.cost_usd
    else:
        raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=PROMPT)
        shown = raw.parse().usage.cost_usd
        assert Decimal(raw.headers["x-codelace-cost-usd"]) * 10**9 == COST
    _check_bill(priced, email, before, shown)


def test_native_responses_cache_writes_are_billed_at_the_write_price(
    priced: MessagesBox,
) -> None:
    email, key = priced.new_key()
    before, _ = priced.balance_nanos(email)
    output = [
        {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Cached.", "annotations": []}],
        }
    ]
    answer = {"id": "resp_1", "object": "response", "created_at": 1, "status": "completed",
              "model": "router-claude", "output": output, "usage": RESPONSES_USAGE,
              "error": None, "incomplete_details": None}  # fmt: skip
    priced.openai_fake.push(_json_reply(answer))
    done = httpx.post(
        f"{priced.url}/v1/responses",
        headers={"authorization": f"Bearer {key}"},
        json={"model": NATIVE_MODEL, "input": PROMPT[0]["content"]},
        timeout=30,
        verify=TLS,
    )
    assert done.status_code == 200, done.text
    assert Decimal(done.headers["x-codelace-cost-usd"]) * 10**9 == COST
    _check_bill(priced, email, before, done.json()["usage"]["cost_usd"])


HOUR = {"type": "ephemeral", "ttl": "1h"}
HOUR_COST = usd_nanos((500, PRICES["in"]), (50, PRICES["out"]), (300, PRICES["read"]),
                      (200, PRICES["write_1h"]))  # fmt: skip


def _cached_prompt(*controls: dict[str, str]) -> list[dict[str, Any]]:
    """A user message of one text part per cache_control, each part marked with it."""
    parts = [{"type": "text", "text": f"Part {n}. " * 60, "cache_control": control}
             for n, control in enumerate(controls)]  # fmt: skip
    return [{"role": "user", "content": parts}]


@pytest.mark.parametrize("streamed", [False, True])
def test_writes_of_a_chat_whose_every_cache_control_asks_an_hour_are_billed_as_1h(
    priced: MessagesBox, streamed: bool
) -> None:
    """OpenRouter bills 1-hour writes at the 1-hour price but reports them unsplit: they were
    billed at the 5-minute price, the operator paying the difference."""
    email, key = priced.new_key()
    before, _ = priced.balance_nanos(email)
    priced.openai_fake.push(_chat_stream() if streamed else _json_reply(_chat_answer()))
    options: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True}}
    asked = _cached_prompt(HOUR, HOUR)
    answer = priced.sdk(key).chat.completions.create(
        model=MODEL, messages=asked, **(options if streamed else {})
    )
    shown = list(answer)[-1].usage.cost_usd if streamed else answer.usage.cost_usd
    assert priced.openai_fake.requests[-1].body["messages"] == asked  # sent up as asked
    _check_bill(priced, email, before, shown, HOUR_COST, hours=200)


@pytest.mark.parametrize(
    "controls",
    [(HOUR, {"type": "ephemeral"}), (HOUR, {"type": "ephemeral", "ttl": "5m"})],
    ids=["1h-and-default", "1h-and-5m"],
)
def test_writes_of_a_chat_mixing_lifetimes_keep_the_write_price(
    priced: MessagesBox, controls: tuple[dict[str, str], ...]
) -> None:
    """Which of the unsplit writes lasts an hour cannot be told: the write price, as before."""
    email, key = priced.new_key()
    before, _ = priced.balance_nanos(email)
    priced.openai_fake.push(_json_reply(_chat_answer()))
    answer = priced.sdk(key).chat.completions.create(
        model=MODEL, messages=_cached_prompt(*controls)
    )
    _check_bill(priced, email, before, answer.usage.cost_usd)


def test_messages_to_an_openai_upstream_send_no_cache_control_so_no_1h_price(
    priced: MessagesBox,
) -> None:
    """The Messages route's translation sends no cache_control up: whatever the client's ttl,
    the writes reported are none of its asking, billed at the write price."""
    email, key = priced.new_key()
    before, _ = priced.balance_nanos(email)
    priced.openai_fake.push(_json_reply(_chat_answer()))
    system = [{"type": "text", "text": "Be brief. " * 60, "cache_control": HOUR}]
    answer = priced.client(key).messages.with_raw_response.create(
        model=MODEL, max_tokens=100, system=system, messages=_cached_prompt(HOUR)
    )
    assert "cache_control" not in json.dumps(priced.openai_fake.requests[-1].body)
    _check_bill(priced, email, before, answer.headers["x-codelace-cost-usd"])
