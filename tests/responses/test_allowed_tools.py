"""`tool_choice: {"type": "allowed_tools", "mode", "tools"}` (OpenAI's way to narrow the tools a
turn may call while the full list stays put for prompt caching) through a real box and the
real openai SDK: a chat upstream gets only the allowed tools and the mode as its tool_choice;
a native Responses upstream gets the choice as sent."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.fakes.anthropic_upstream import Reply as AnthropicReply
from tests.fakes.openai_upstream import Reply
from tests.responses.conftest import ANTHROPIC_MODEL, NATIVE_MODEL, OPENAI_MODEL, ResponsesBox

CITY = {"type": "object", "properties": {"city": {"type": "string"}}}
TOOLS: list[Any] = [
    {"type": "function", "name": "get_weather", "parameters": CITY},
    {"type": "function", "name": "get_time", "parameters": CITY},
]
ONLY_WEATHER: Any = {
    "type": "allowed_tools", "mode": "required",
    "tools": [{"type": "function", "name": "get_weather"}],
}  # fmt: skip


def test_a_chat_upstream_gets_the_allowed_tools_only(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    client = fresh.openai(key)
    fresh.openai_fake.push(Reply(content="ok"))
    answer = client.responses.create(
        model=OPENAI_MODEL, input="Weather?", tools=TOOLS, tool_choice=ONLY_WEATHER
    )
    sent = fresh.openai_fake.requests[-1].body
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]
    assert sent["tool_choice"] == "required"
    assert answer.tool_choice.type == "allowed_tools"  # type: ignore[union-attr]
    fresh.fake.script(AnthropicReply(text="ok"))
    client.responses.create(
        model=ANTHROPIC_MODEL, input="Weather?", tools=TOOLS, tool_choice=ONLY_WEATHER
    )
    sent = fresh.fake.requests[-1].body
    assert [t["name"] for t in sent["tools"]] == ["get_weather"]
    assert sent["tool_choice"]["type"] == "any"


def test_a_native_upstream_gets_the_choice_as_sent(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="ok"))
    fresh.openai(key).responses.create(
        model=NATIVE_MODEL, input="Weather?", tools=TOOLS, tool_choice=ONLY_WEATHER
    )
    sent = fresh.openai_fake.requests[-1].body
    assert sent["tool_choice"] == ONLY_WEATHER and len(sent["tools"]) == 2


@pytest.mark.parametrize(
    "choice",
    [
        ONLY_WEATHER | {"mode": "none"},
        ONLY_WEATHER | {"tools": [{"type": "function", "name": "get_stock"}]},
        ONLY_WEATHER | {"tools": []},
    ],
)
def test_a_wrong_allowed_tools_choice_is_a_400(fresh: ResponsesBox, choice: Any) -> None:
    _, key = fresh.new_key()
    with pytest.raises(openai.BadRequestError) as caught:
        fresh.openai(key).responses.create(
            model=OPENAI_MODEL, input="Weather?", tools=TOOLS, tool_choice=choice
        )
    assert "tool_choice" in str(caught.value.body)
    assert fresh.openai_fake.requests == []


@pytest.mark.parametrize(
    "hosted",
    [
        {"type": "web_search", "name": "get_weather"},
        {"type": "image_generation", "name": "get_weather"},
        {"type": "mcp", "server_label": "wiki", "server_url": "https://mcp.example/sse",
         "name": "get_weather"},
    ],
)  # fmt: skip
@pytest.mark.parametrize("model", [NATIVE_MODEL, OPENAI_MODEL])
def test_a_hosted_tool_among_the_allowed_ones_is_a_400(
    fresh: ResponsesBox, hosted: Any, model: str
) -> None:
    """An allowed tool of a hosted type that also carries a function's name passed (only the
    names were compared) and reached a native upstream as sent: OpenAI takes hosted tools in
    `allowed_tools` (search, image generation, a remote MCP server), billed per use, which the
    box refuses in `tools` and in a `tool_choice` of their own."""
    _, key = fresh.new_key()
    choice = ONLY_WEATHER | {"tools": [{"type": "function", "name": "get_time"}, hosted]}
    with pytest.raises(openai.BadRequestError) as caught:
        fresh.openai(key).responses.create(
            model=model, input="Weather?", tools=TOOLS, tool_choice=choice
        )
    assert "tool_choice.tools" in str(caught.value.body)
    assert fresh.openai_fake.requests == []
