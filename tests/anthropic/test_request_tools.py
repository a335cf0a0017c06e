"""OpenAI's allowed_tools tool_choice, to Anthropic's tool_choice and tools (pure code)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.anthropic.request_support import HELLO, TOOLS, build, refusal


def _allowed(mode: str, *names: str) -> dict[str, Any]:
    tools = [{"type": "function", "function": {"name": name}} for name in names]
    return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": tools}}


@pytest.mark.parametrize(
    ("choice", "expected", "sent_tools"),
    [
        # every tool allowed: the mode alone, the tools (and their prompt cache) unchanged
        (_allowed("auto", "get_weather", "get_time", "send_mail"), {"type": "auto"}, 3),
        (_allowed("required", "send_mail", "get_time", "get_weather"), {"type": "any"}, 3),
        # one tool required: Anthropic's named choice, every tool still sent
        (_allowed("required", "get_time"), {"type": "tool", "name": "get_time"}, 3),
        # a strict subset: only those tools, or the model could call one not allowed
        (_allowed("auto", "get_weather", "send_mail"), {"type": "auto"}, 2),
        (_allowed("required", "get_weather", "get_time"), {"type": "any"}, 2),
    ],
)
def test_allowed_tools_choice(choice: Any, expected: dict[str, Any], sent_tools: int) -> None:
    sent = build({"model": "m", "messages": HELLO, "tools": TOOLS, "tool_choice": choice})
    assert sent["tool_choice"] == expected
    names = [tool["name"] for tool in sent["tools"]]
    allowed = {entry["function"]["name"] for entry in choice["allowed_tools"]["tools"]}
    assert len(names) == sent_tools and (sent_tools == 3 or set(names) == allowed)
    assert names == [n for n in ("get_weather", "get_time", "send_mail") if n in names]


def test_allowed_tools_keep_parallel_and_thinking_rules() -> None:
    sent = build({"model": "m", "messages": HELLO, "tools": TOOLS, "parallel_tool_calls": False,
                  "tool_choice": _allowed("auto", "get_time")})  # fmt: skip
    assert sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert [tool["name"] for tool in sent["tools"]] == ["get_time"]
    # auto over the allowed tools goes with thinking; required forces a tool, which it refuses
    sent = build({"model": "m", "messages": HELLO, "tools": TOOLS, "reasoning_effort": "low",
                  "tool_choice": _allowed("auto", "get_time")})  # fmt: skip
    assert sent["thinking"]["type"] == "enabled"
    error = refusal({"model": "m", "messages": HELLO, "tools": TOOLS, "reasoning_effort": "low",
                     "tool_choice": _allowed("required", "get_time", "send_mail")})  # fmt: skip
    assert error.param == "tool_choice"


@pytest.mark.parametrize(
    ("choice", "words"),
    [
        (_allowed("auto", "delete_all"), "delete_all, not in tools"),
        (_allowed("sometimes", "get_time"), "mode auto or required"),
        ({"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}}, "non-empty"),
        ({"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [{}]}},
         "{type: function, function: {name}}"),
    ],
)  # fmt: skip
def test_malformed_allowed_tools_are_a_400(choice: Any, words: str) -> None:
    error = refusal({"model": "m", "messages": HELLO, "tools": TOOLS, "tool_choice": choice})
    assert error.param == "tool_choice" and words in error.message
