"""OpenRouter's `reasoning` object to Anthropic's thinking, checked against the cap sent (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.anthropic.request_support import HELLO, TOOLS, build, refusal


@pytest.mark.parametrize(
    ("reasoning", "max_tokens", "budget"),
    [
        ({"effort": "high"}, 10000, 8000),  # a share of the max tokens sent, as OpenRouter
        ({"effort": "low"}, 10000, 2000),
        ({"effort": "low"}, 2000, 1024),  # never below Anthropic's least budget
        ({"enabled": True}, 10000, 5000),  # enabled alone: OpenRouter's default, medium
        ({"max_tokens": 3000}, 10000, 3000),  # Anthropic-style: the budget itself
        ({"max_tokens": 500, "exclude": True}, 10000, 1024),  # raised to the least budget
    ],
)
def test_reasoning_turns_budget_thinking_on(
    reasoning: dict[str, Any], max_tokens: int, budget: int
) -> None:
    sent = build({"model": "m", "messages": HELLO, "max_tokens": max_tokens,
                  "reasoning": reasoning})  # fmt: skip
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert sent["max_tokens"] == max_tokens
    assert "reasoning" not in sent and "reasoning_effort" not in sent


@pytest.mark.parametrize(
    "reasoning",
    [{"effort": "none"}, {"enabled": False}, {"enabled": False, "effort": "high"},
     {"exclude": True}, {}],
)  # fmt: skip
def test_reasoning_that_asks_for_no_thinking_sends_none(reasoning: dict[str, Any]) -> None:
    sent = build({"model": "m", "messages": HELLO, "reasoning": reasoning})
    assert "thinking" not in sent and "reasoning" not in sent


def test_the_budget_is_checked_against_the_output_cap_sent() -> None:
    """Without max_tokens the model's cap is sent (and reserved): the budget must fit below it,
    never raise it (the hold must bound the charge)."""
    sent = build({"model": "m", "messages": HELLO, "reasoning": {"effort": "high"}}, cap=4000)
    assert sent["max_tokens"] == 4000 and sent["thinking"]["budget_tokens"] == 3200
    error = refusal({"model": "m", "messages": HELLO, "reasoning": {"max_tokens": 4000}},
                    cap=4000)  # fmt: skip
    assert error.param == "reasoning.max_tokens" and "below max_tokens (4000)" in error.message
    error = refusal({"model": "m", "messages": HELLO, "max_tokens": 1024,
                     "reasoning": {"effort": "high"}})  # fmt: skip
    assert error.param == "reasoning" and "max_tokens above 1024" in error.message


def test_adaptive_models_take_an_effort_but_no_budget() -> None:
    body = {"model": "m", "messages": HELLO, "reasoning": {"effort": "low"}}
    sent = build(body, model="claude-opus-4-7")
    assert sent["thinking"] == {"type": "adaptive", "display": "summarized"}
    assert sent["output_config"] == {"effort": "low"}
    error = refusal({"model": "m", "messages": HELLO, "reasoning": {"max_tokens": 2000}},
                    model="claude-opus-4-7")  # fmt: skip
    assert error.param == "reasoning.max_tokens"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"reasoning": "high"}, "reasoning"),
        ({"reasoning": {"effort": "huge"}}, "reasoning.effort"),
        ({"reasoning": {"effort": "high", "max_tokens": 2000}}, "reasoning"),
        ({"reasoning": {"exclude": "yes"}}, "reasoning.exclude"),
        ({"reasoning": {"max_tokens": 2.5}}, "reasoning.max_tokens"),
        ({"reasoning": {"effort": "high", "summary": "auto"}}, "reasoning"),
        ({"reasoning": {"effort": "high"}, "reasoning_effort": "low"}, "reasoning"),
        ({"reasoning": {"effort": "high"}, "temperature": 0.5}, "temperature"),
        ({"reasoning": {"effort": "high"}, "tool_choice": "required", "tools": TOOLS},
         "tool_choice"),
    ],
)  # fmt: skip
def test_reasoning_anthropic_cannot_honour_is_a_400_naming_it(
    fields: dict[str, Any], param: str
) -> None:
    error = refusal({"model": "m", "messages": HELLO, **fields})
    assert error.param == param
    assert "reasoning" in error.message
