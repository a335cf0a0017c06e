"""Anthropic-defined client tools (computer use, text editor, bash, memory) cost input tokens
their few bytes in the body do not show: Anthropic adds each one's definition and a system
prompt (computer use: 735 tokens and 466-499 more; the text editor 700; bash 245). The hold
reserves them, or a request naming them is charged less than it costs. Plain HTTP against the
real box, fake Anthropic upstream."""

from __future__ import annotations

import httpx

from codelace_box.gateway.messages import messages_input_bound
from codelace_box.jsonwire import dumps
from tests.fakes.anthropic_tools import DEFINED_TOOLS, DEFINED_TOOLS_TOKENS
from tests.fakes.anthropic_upstream import Reply
from tests.messages.conftest import MODEL, PRICES, MessagesBox, usd_nanos
from tests.support import TLS

TOOLS = DEFINED_TOOLS
DOCUMENTED = DEFINED_TOOLS_TOKENS


def body(tools: list[dict[str, object]] = TOOLS) -> dict[str, object]:
    return {"model": MODEL, "max_tokens": 10, "tools": tools,
            "messages": [{"role": "user", "content": "Take a screenshot"}]}  # fmt: skip


def test_the_bound_covers_what_anthropic_adds_for_its_tools() -> None:
    sent = body()
    assert messages_input_bound(len(dumps(sent)), sent, 200_000) >= DOCUMENTED + len(dumps(sent))


def test_a_request_with_anthropics_tools_is_charged_what_it_cost(fresh: MessagesBox) -> None:
    """The three tools cached for an hour (Claude Code marks its tools so): 2,525 tokens written
    at the 1-hour write price, held for 1,327 (the body's 327 bytes and 1,000 tokens)."""
    email, key = fresh.new_key(credit_usd="1")
    tools = [*TOOLS[:2], {**TOOLS[2], "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    fresh.fake.script(Reply(text="Done.", input_tokens=10, output_tokens=10,
                            cache_creation_input_tokens=DOCUMENTED,
                            cache_creation_1h_tokens=DOCUMENTED))  # fmt: skip
    answer = httpx.post(f"{fresh.server.base_url}/v1/messages", json=body(tools),
                        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                        timeout=30, verify=TLS)  # fmt: skip
    assert answer.status_code == 200, answer.text
    cost = usd_nanos((10, PRICES["in"]), (DOCUMENTED, PRICES["write_1h"]), (10, PRICES["out"]))
    assert fresh.balance_nanos(email) == (1_000_000_000 - cost, 0)
    assert "operator's loss" not in fresh.server.log_text()
