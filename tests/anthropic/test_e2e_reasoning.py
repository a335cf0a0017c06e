"""End to end: OpenRouter's `reasoning`, allowed_tools, `"usage": null` chunks, overload, and
Anthropic's `thinking.display: "updates"`.

The openai SDK -> the real box -> the strict fake Anthropic API: what OpenRouter-style clients
send for thinking reaches Claude as Anthropic's `thinking` and comes back where they read it.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.anthropic.conftest import (
    ADAPTIVE_MODEL,
    MAX_OUTPUT,
    MODEL,
    AnthropicBox,
    expected_cost_nanos,
)
from tests.fakes.anthropic_checks import thinking_display_problem
from tests.fakes.anthropic_upstream import FakeAnthropic, Reply, ToolUse

pytestmark = pytest.mark.timeout(60)
HELLO: list[Any] = [{"role": "user", "content": "Hello"}]
TOOLS: list[Any] = [
    {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
    for name in ("get_weather", "get_time", "send_mail")
]
THOUGHT = "Weigh both options first."
_SHOWN = ("reasoning", "reasoning_content", "thinking_blocks")


def test_openrouter_reasoning_thinks_on_claude_and_answers_in_reasoning(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    email, client = box.new_user()
    before, _ = box.balance_nanos(email)
    fresh_fake.script(Reply(thinking=THOUGHT, text="42", input_tokens=12, output_tokens=30))
    completion = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=10000, extra_body={"reasoning": {"effort": "high"}}
    )
    sent = fresh_fake.requests[0].body
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 8000}  # 80% of max_tokens
    assert sent["max_tokens"] == 10000 and "reasoning" not in sent
    message = completion.choices[0].message
    assert message.content == "42"
    assert (message.model_extra or {})["reasoning"] == THOUGHT
    assert box.balance_nanos(email) == (before - expected_cost_nanos(12, 30), 0)


def test_excluded_reasoning_thinks_but_streams_no_thinking_text(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    email, client = box.new_user()
    before, _ = box.balance_nanos(email)
    fresh_fake.script(Reply(thinking=THOUGHT, text="42", input_tokens=12, output_tokens=30))
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True},
        extra_body={"reasoning": {"max_tokens": 2000, "exclude": True}},
    ))  # fmt: skip
    # the budget as asked, below the model's output cap, which is what was sent and reserved
    sent = fresh_fake.requests[0].body
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert sent["max_tokens"] == MAX_OUTPUT
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content or "" for d in deltas) == "42"
    assert not [d for d in deltas if set(d.model_extra or {}) & set(_SHOWN)]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 30
    assert box.balance_nanos(email) == (before - expected_cost_nanos(12, 30), 0)


def test_a_reasoning_budget_past_the_reserved_cap_is_a_400_before_any_call(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    """Without max_tokens the model's cap is sent and reserved: a budget at or above it would
    need a larger max_tokens than the hold covers, so it is refused, not raised."""
    email, client = box.new_user()
    before = box.balance_nanos(email)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=HELLO, extra_body={"reasoning": {"max_tokens": MAX_OUTPUT}}
        )
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == "reasoning.max_tokens"
    assert f"below max_tokens ({MAX_OUTPUT})" in error["message"]
    assert fresh_fake.requests == [] and box.balance_nanos(email) == before


def _allowed(mode: str, *names: str) -> Any:
    tools = [{"type": "function", "function": {"name": name}} for name in names]
    return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": tools}}


def test_allowed_tools_reach_claude_as_a_choice_over_the_allowed_ones(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    _, client = box.new_user()
    fresh_fake.script(Reply(tool_uses=[ToolUse("toolu_1", "get_time", {})]), Reply(text="Sunny"))
    completion = client.chat.completions.create(
        model=MODEL, messages=HELLO, tools=TOOLS, tool_choice=_allowed("required", "get_time")
    )
    [call] = completion.choices[0].message.tool_calls or []
    assert call.function.name == "get_time"  # type: ignore[union-attr]
    first = fresh_fake.requests[0].body
    assert first["tool_choice"] == {"type": "tool", "name": "get_time"}
    assert len(first["tools"]) == 3, "every tool still sent: the prompt cache is kept"
    client.chat.completions.create(
        model=MODEL, messages=HELLO, tools=TOOLS,
        tool_choice=_allowed("auto", "get_weather", "send_mail"),
    )  # fmt: skip
    second = fresh_fake.requests[1].body
    assert second["tool_choice"] == {"type": "auto"}
    assert [tool["name"] for tool in second["tools"]] == ["get_weather", "send_mail"]


def test_streamed_chunks_say_usage_null_until_the_usage_chunk(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    """As OpenAI streams with include_usage; without it no chunk has the key at all."""
    _, client = box.new_user()
    fresh_fake.script(Reply(text="Once upon a time"), Reply(text="Once upon a time"))
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
    ))  # fmt: skip
    *before_usage, last = chunks
    assert len(before_usage) > 2
    assert all("usage" in c.model_fields_set and c.usage is None for c in before_usage)
    assert last.choices == [] and last.usage is not None
    plain = list(client.chat.completions.create(model=MODEL, messages=HELLO, stream=True))
    assert plain and not [c for c in plain if "usage" in c.model_fields_set]


def test_a_stream_cut_at_the_cap_says_usage_null_before_its_usage_chunk(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    """The box's own finish chunk of a stream it cut at max_tokens is one such chunk too."""
    _, client = box.new_user()
    fresh_fake.script(Reply(text="a b c d e f g h i j k l m n o p q r s t u v w x y z " * 20,
                            output_tokens=400))  # fmt: skip
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=HELLO, stream=True, max_tokens=5,
        stream_options={"include_usage": True},
    ))  # fmt: skip
    *before_usage, last = chunks
    assert [c.choices[0].finish_reason for c in before_usage][-1] == "length"
    assert all("usage" in c.model_fields_set and c.usage is None for c in before_usage)
    assert last.usage is not None


def test_overloaded_on_every_key_is_a_503(box: AnthropicBox, fresh_fake: FakeAnthropic) -> None:
    """OpenAI's API answers 503 when overloaded; Anthropic's 529 on every retry is that."""
    email, client = box.new_user()
    before = box.balance_nanos(email)
    fresh_fake.script(*[Reply.error(529, "overloaded_error", "Overloaded")] * 3)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.status_code == 503
    error = caught.value.body
    assert isinstance(error, dict) and error["code"] == "upstream_overloaded"
    assert "Overloaded" in error["message"] and len(fresh_fake.requests) == 3
    assert box.balance_nanos(email) == before


UPDATES_BETA = "thinking-display-updates-2026-08-18"


def _betas(headers: dict[str, str]) -> list[str]:
    """The anthropic-beta flags of a request the fake received."""
    sent = next((v for k, v in headers.items() if k.lower() == "anthropic-beta"), "")
    return [flag.strip() for flag in sent.split(",") if flag.strip()]


def test_the_fake_takes_display_updates_only_under_its_beta() -> None:
    """As Anthropic: "updates" is a beta's display (Claude Code sends it with the beta)."""
    body = {"thinking": {"type": "adaptive", "display": "updates"}}
    refused = thinking_display_problem(body, "")
    assert refused is not None and "thinking.adaptive.display" in refused
    assert thinking_display_problem(body, f"x-1, {UPDATES_BETA}") is None
    assert thinking_display_problem(
        {"thinking": {"type": "adaptive", "display": "x"}}, UPDATES_BETA
    )
    assert (
        thinking_display_problem({"thinking": {"type": "adaptive", "display": "omitted"}}, "")
        is None
    )


@pytest.mark.parametrize(
    ("model", "thinking"),
    [(MODEL, {"type": "enabled", "budget_tokens": 2000}), (ADAPTIVE_MODEL, {"type": "adaptive"})],
    ids=["enabled", "adaptive"],
)
def test_display_updates_reaches_anthropic_with_its_beta(
    box: AnthropicBox, fresh_fake: FakeAnthropic, model: str, thinking: dict[str, Any]
) -> None:
    """A client's own Anthropic `thinking` with display "updates" (Anthropic's newer display,
    progress notes between tool calls only) was a 400 "display must be summarized or omitted".
    It is sent as given, with the beta Anthropic takes it under (this route forwards no betas
    of the client's); the other displays add no beta."""
    _, client = box.new_user()
    for display in ("updates", "omitted", "summarized"):
        asked = {**thinking, "display": display}
        client.chat.completions.create(
            model=model, messages=HELLO, max_tokens=4000, extra_body={"thinking": asked}
        )
        sent = fresh_fake.requests[-1]
        assert sent.body["thinking"] == asked
        assert (UPDATES_BETA in _betas(sent.headers)) is (display == "updates")
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=model, messages=HELLO, max_tokens=4000,
            extra_body={"thinking": {**thinking, "display": "full"}},
        )  # fmt: skip
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["param"] == "thinking.display"
    assert len(fresh_fake.requests) == 3
