"""/v1/messages to an `openai` provider: an answer that ends in tool calls stops for
"tool_use" whatever finish_reason the server gave. OpenAI itself answers a forced tool_choice
with tool calls and `finish_reason: "stop"`, and Gemini's OpenAI-compatible stream does so for
every call; Anthropic always says "tool_use" then, and the anthropic SDK's tool runner runs the
calls of a turn that stopped for "tool_use" only (an `end_turn` is final: its tool_use blocks
are not executed). And the other way: a finish_reason "tool_calls" with no call (vLLM's for
tool_choice "required" without a parsed call, reasoning models after tool_choice "none") is no
"tool_use": Anthropic's documented loop takes the first tool_use block of such a turn."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import NEEDS_SDK, OPENAI_ALIAS, MessagesBox

pytestmark = NEEDS_SDK

ASK = [{"role": "user", "content": "What time is it in Paris?"}]
CALL = [{"name": "clock", "arguments": '{"city": "Paris"}'}]


def _answer(box: MessagesBox, key: str, ask: dict[str, Any], streamed: bool) -> Any:
    """The SDK's message for `ask`: the stream's final message, or the answer."""
    client = box.client(key)
    if not streamed:
        return client.messages.create(**ask)
    with client.messages.stream(**ask) as stream:
        return stream.get_final_message()


@pytest.mark.parametrize("streamed", [False, True])
def test_tool_calls_with_finish_reason_stop_stop_for_tool_use(
    fresh: MessagesBox, streamed: bool
) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(tool_calls=CALL, finish_reason="stop"))
    tools = [{"name": "clock", "input_schema": {"type": "object"}}]
    choice = {"type": "tool", "name": "clock"}  # forced: OpenAI says "stop" then
    ask: dict[str, Any] = {"model": OPENAI_ALIAS, "max_tokens": 100, "messages": ASK,
                           "tools": tools, "tool_choice": choice}  # fmt: skip
    message = _answer(fresh, key, ask, streamed)
    assert [block.type for block in message.content] == ["tool_use"]
    assert message.stop_reason == "tool_use"


@pytest.mark.parametrize("streamed", [False, True])
def test_finish_reason_tool_calls_without_a_call_is_an_end_turn(
    fresh: MessagesBox, streamed: bool
) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="It is noon in Paris.", finish_reason="tool_calls"))
    tools = [{"name": "clock", "input_schema": {"type": "object"}}]
    ask: dict[str, Any] = {"model": OPENAI_ALIAS, "max_tokens": 100, "messages": ASK,
                           "tools": tools, "tool_choice": {"type": "any"}}  # fmt: skip
    message = _answer(fresh, key, ask, streamed)
    assert [block.type for block in message.content] == ["text"]
    assert message.stop_reason == "end_turn"


def test_the_sdks_tool_runner_runs_the_calls(fresh: MessagesBox) -> None:
    from anthropic import beta_tool

    ran: list[str] = []

    @beta_tool
    def clock(city: str) -> str:
        """The time in a city."""
        ran.append(city)
        return "14:05"

    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(tool_calls=CALL, finish_reason="stop"), Reply(content="14:05."))
    runner = fresh.client(key).beta.messages.tool_runner(
        model=OPENAI_ALIAS, max_tokens=100, messages=ASK, tools=[clock]
    )
    final = runner.until_done()
    assert ran == ["Paris"]
    assert final.content[0].type == "text" and final.content[0].text == "14:05."
