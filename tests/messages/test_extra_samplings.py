"""/v1/messages to an `anthropic` provider: the samplings Anthropic runs besides the answer
(server-side compaction's summarisation pass, the advisor tool's calls) are reported in
`usage.iterations` and charged; the hold must cover them, or the operator pays the rest (the
advisor's calls, at the advisor model's own prices: test_advisor_prices.py)."""

from __future__ import annotations

import httpx
import pytest

from codelace_box.gateway.extra_samplings import advisor_tokens, compaction_tokens
from tests.fakes.anthropic_upstream import Reply
from tests.messages.conftest import ALIAS, NEEDS_SDK, PRICES, MessagesBox, usd_nanos
from tests.support import TLS

pytestmark = NEEDS_SDK


def post(box: MessagesBox, key: str, body: object, **headers: str) -> httpx.Response:
    head = {"x-api-key": key, "anthropic-version": "2023-06-01", **headers}
    return httpx.post(f"{box.server.base_url}/v1/messages?beta=true", json=body, headers=head,
                      timeout=30, verify=TLS)  # fmt: skip


@pytest.mark.parametrize("stream", [False, True])
def test_a_compaction_summary_longer_than_max_tokens_is_charged_in_full(
    fresh: MessagesBox, stream: bool
) -> None:
    """The summarisation pass is a sampling of its own: its output is not bounded by the
    request's max_tokens, only by the context window the pass runs in. The hold was the
    answer's bound alone, and the pass's 4,000 summary tokens were the operator's loss."""
    email, key = fresh.new_key()
    compaction = {"input_tokens": 2000, "output_tokens": 4000, "cache_read_input_tokens": 0,
                  "cache_creation_input_tokens": 0}  # fmt: skip
    fresh.fake.script(Reply(text="Summarised.", input_tokens=230, output_tokens=10,
                            compaction=compaction))  # fmt: skip
    body = {"model": ALIAS, "max_tokens": 100, "stream": stream,
            "context_management": {"edits": [{"type": "compact_20260112"}]},
            "messages": [{"role": "user", "content": "long talk " * 300}]}  # fmt: skip
    answer = post(fresh, key, body, **{"anthropic-beta": "compact-2026-01-12"})
    assert answer.status_code == 200, answer.text
    row = fresh.usage_rows(email)[-1]
    cost = usd_nanos((230 + 2000, PRICES["in"]), (10 + 4000, PRICES["out"]))
    assert row["cost_nanos"] == cost
    assert row["hold_nanos"] >= cost
    assert fresh.balance_nanos(email)[1] == 0


def test_only_a_request_asking_for_them_holds_for_extra_samplings() -> None:
    plain = {"context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}}
    assert compaction_tokens(plain, 200_000) == 0
    assert advisor_tokens(plain, 200_000) == (0, 0)
    compact = {"context_management": {"edits": [{"type": "compact_20260112"}]}}
    assert compaction_tokens(compact, 200_000) == 200_000
    looping = {**compact, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}
    assert compaction_tokens(looping, 200_000) == 10 * 200_000  # a pass per turn of the loop
    tools = [{"type": "advisor_20260301", "name": "advisor", "model": "m", "max_uses": 3}]
    assert advisor_tokens({"tools": tools}, 1000) == (3000, 3000)
    tools[0] |= {"max_uses": 50, "max_tokens": 2048}
    assert advisor_tokens({"tools": tools}, 200_000) == (10 * 200_000, 10 * 2048)
