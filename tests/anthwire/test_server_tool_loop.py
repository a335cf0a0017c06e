"""An Anthropic server tool's sampling loop calls the model more than once in one request, and
`max_tokens` limits each call, not the answer: the anthropic SDK (2.17) documents that
`usage.output_tokens` can exceed `max_tokens` then. Where the operator allowed the tool, the
box relays and charges such an answer whole, and holds for it, as the upstream bills it."""

from __future__ import annotations

import pytest

from tests.anthwire.conftest import WireBox, cost_nanos
from tests.fakes import anthropic_wire as wire
from tests.fakes.hostile_upstream import SSE, Act, HostileUpstream

pytestmark = pytest.mark.timeout(60)
SEARCH = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}]
# Anthropic's tool search (free, no --allow-field) runs the same server loop: the model calls
# it, the server answers with tool references, and the model samples again
TOOL_SEARCH = [{"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"}]
WORDS = 10  # text deltas per turn of the loop: each turn stays within MAX_TOKENS
MAX_TOKENS = 16  # the whole answer (two turns, 21 output tokens) is over it


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_a_server_tool_loop_past_max_tokens_is_relayed_and_charged_whole(
    box: WireBox, hostile: HostileUpstream, stream: bool
) -> None:
    """Both turns reach the client (not cut at max_tokens as if the answer ran over it), the
    stop reason is the upstream's, and the user pays exactly the usage, nothing left held."""
    email, key = box.new_user("20")  # the hold: a 200k window for each turn after the first
    answer = wire.search_loop(WORDS)
    assert answer.usage["output_tokens"] > MAX_TOKENS
    hostile.push(Act(200, answer.sse(), content_type=SSE) if stream else
                 Act(200, [answer.body()]))  # fmt: skip
    args = {"model": "wire/claude", "max_tokens": MAX_TOKENS, "tools": SEARCH,
            "messages": [{"role": "user", "content": "search it"}]}  # fmt: skip
    client = box.anthropic(key)
    if stream:
        with client.messages.stream(**args) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**args)
    text = "".join(block.text for block in message.content if block.type == "text")
    assert (text, message.stop_reason) == (answer.text, "end_turn")
    assert message.usage.output_tokens == answer.usage["output_tokens"]
    balance, held = box.balance_nanos(email)
    assert (20_000_000_000 - balance, held) == (cost_nanos(answer.usage), 0)
    assert box.usage_rows(email)[-1]["status"] == "ok"
    assert box.open_holds() == 0


@pytest.mark.parametrize("tools", [SEARCH, TOOL_SEARCH], ids=["web_search", "tool_search"])
def test_a_server_tool_loop_is_held_for_every_turn_it_may_take(
    box: WireBox, hostile: HostileUpstream, tools: list[dict[str, str]]
) -> None:
    """Five turns, each within max_tokens, bill five times its output: the hold covers the
    loop's turns (up to the model's context window), so the user is charged all of it and the
    operator loses nothing (with the hold sized on one turn's max_tokens, the charge stopped at
    the hold). The model's small context window keeps the input's reserve from hiding it."""
    model = "wire/claude-small-window"
    box.cli("models", "set", model, "--provider", "wire", "--upstream-model", "claude-sonnet-4-5",
            "--input-per-1m", "3", "--output-per-1m", "15", "--context-tokens", "2000")  # fmt: skip
    box.until_served(model)
    email, key = box.new_user("5")
    answer = wire.search_loop(190, turns=5)
    hostile.push(Act(200, [answer.body()]))
    box.anthropic(key).messages.create(
        model=model,
        max_tokens=200,
        tools=tools,  # type: ignore[arg-type]
        messages=[{"role": "user", "content": "search it"}],
    )
    balance, held = box.balance_nanos(email)
    assert (5_000_000_000 - balance, held) == (cost_nanos(answer.usage), 0)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_a_server_tool_loop_is_held_for_the_input_of_every_turn(
    box: WireBox, hostile: HostileUpstream, stream: bool
) -> None:
    """Each turn of the loop reads the conversation so far again, and Anthropic's `usage`
    sums the turns (`input_tokens` is their total; `usage.iterations` each turn's, "token
    accumulation across server-side tool use loops", anthropic SDK 2.17): five turns of 1,900
    input tokens in a 2,000-token window bill 9,500, past the one window the hold took for
    input. Held for a window per turn, the user is charged all of it (with one window held,
    the charge stopped at the hold and the operator paid the rest)."""
    model = "wire/claude-small-window"
    box.cli("models", "set", model, "--provider", "wire", "--upstream-model", "claude-sonnet-4-5",
            "--input-per-1m", "3", "--output-per-1m", "15", "--context-tokens", "2000")  # fmt: skip
    box.until_served(model)
    email, key = box.new_user("5")
    answer = wire.search_loop(19, turns=5, turn_input=1900)
    hostile.push(Act(200, answer.sse(), content_type=SSE) if stream else
                 Act(200, [answer.body()]))  # fmt: skip
    args = {"model": model, "max_tokens": 20, "tools": SEARCH,
            "messages": [{"role": "user", "content": "search it"}]}  # fmt: skip
    client = box.anthropic(key)
    if stream:
        with client.messages.stream(**args) as events:
            events.get_final_message()
    else:
        client.messages.create(**args)
    balance, held = box.balance_nanos(email)
    assert (5_000_000_000 - balance, held) == (cost_nanos(answer.usage), 0)
    assert box.usage_rows(email)[-1]["input_tokens"] == 9500
