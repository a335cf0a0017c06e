"""End to end: what OpenAI clients send by default (a temperature, prompt-cache breakpoints as
OpenRouter and LiteLLM take them) through the real box to the strict fake Anthropic API."""

from __future__ import annotations

from typing import Any

import pytest

from tests.anthropic.conftest import ADAPTIVE_MODEL, MODEL, AnthropicBox, expected_cost_nanos
from tests.fakes.anthropic_upstream import FakeAnthropic, Reply

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("stream", [False, True])
def test_a_default_temperature_does_not_break_claude_opus_4_7(
    box: AnthropicBox, fresh_fake: FakeAnthropic, stream: bool
) -> None:
    # Opus 4.7 took sampling out: any temperature or top_p is a 400 there, and OpenAI clients
    # send one by default. The box leaves them out (as OpenRouter does); the call succeeds.
    email, client = box.new_user()
    before, _ = box.balance_nanos(email)
    fresh_fake.script(Reply(text="Fine.", input_tokens=40, output_tokens=3))
    answer = client.chat.completions.create(
        model=ADAPTIVE_MODEL,
        messages=[{"role": "user", "content": "How are you?"}],
        temperature=0.7,
        reasoning_effort="high",
        stream=stream,
    )
    text = (
        "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
        if stream
        else answer.choices[0].message.content
    )
    assert text == "Fine."
    [sent] = fresh_fake.requests
    assert sent.body["model"] == "claude-opus-4-7"
    assert "temperature" not in sent.body
    assert sent.body["thinking"] == {"type": "adaptive", "display": "summarized"}
    assert box.balance_nanos(email) == (before - expected_cost_nanos(40, 3), 0)


def test_cache_control_parts_reach_anthropic_and_cache_reads_are_billed_as_such(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    email, client = box.new_user()
    before, _ = box.balance_nanos(email)
    fresh_fake.script(
        Reply(text="ok", input_tokens=10, cache_read_input_tokens=4000, output_tokens=2)
    )
    manual = {"type": "text", "text": "The manual. " * 50, "cache_control": {"type": "ephemeral"}}
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": [manual]},  # type: ignore[list-item]
            {"role": "user", "content": "Question?"},
        ],
    )
    assert completion.usage is not None
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 4000
    [sent] = fresh_fake.requests
    assert sent.body["system"] == [manual]
    assert box.balance_nanos(email) == (before - expected_cost_nanos(4010, 2), 0)


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_comes_back_from_claude_opus_4_7(
    box: AnthropicBox, fresh_fake: FakeAnthropic, stream: bool
) -> None:
    # Opus 4.7 returns thinking blocks without their text unless the request asks for
    # thinking.display "summarized": an OpenAI client that set reasoning_effort (and pays for
    # the thinking) got an empty reasoning_content.
    _, client = box.new_user()
    fresh_fake.script(Reply(thinking="Weigh both options.", text="B.", output_tokens=90))
    answer = client.chat.completions.create(
        model=ADAPTIVE_MODEL,
        messages=[{"role": "user", "content": "A or B?"}],
        reasoning_effort="medium",
        stream=stream,
    )
    if stream:
        extras = [c.choices[0].delta.model_extra or {} for c in answer if c.choices]
        reasoning = "".join(extra.get("reasoning_content", "") for extra in extras)
    else:
        reasoning = (answer.choices[0].message.model_extra or {})["reasoning_content"]
    assert reasoning == "Weigh both options."
    [sent] = fresh_fake.requests
    assert sent.body["thinking"] == {"type": "adaptive", "display": "summarized"}


def test_a_messages_own_cache_control_reaches_anthropic_as_litellm_takes_it(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    # LiteLLM takes a breakpoint on the message itself for string content (and on a tool
    # message, for its tool_result); its cache_control_injection_points put it there. Dropped,
    # the prompt is never cached and every call is billed at the full input price.
    _, client = box.new_user()
    hour = {"type": "ephemeral", "ttl": "1h"}
    five = {"type": "ephemeral"}
    call = {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{}"}}
    messages: list[Any] = [
        {"role": "system", "content": "The manual. " * 50, "cache_control": hour},
        {"role": "user", "content": "Look it up.", "cache_control": five},
        {"role": "assistant", "content": "Looking.", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Found.", "cache_control": five},
    ]
    client.chat.completions.create(
        model=MODEL, messages=messages, tools=[{"type": "function", "function": {"name": "look"}}]
    )
    [sent] = fresh_fake.requests
    assert sent.body["system"] == [
        {"type": "text", "text": ("The manual. " * 50), "cache_control": hour}
    ]
    question, answer, result = (turn["content"] for turn in sent.body["messages"])
    assert question == [{"type": "text", "text": "Look it up.", "cache_control": five}]
    assert "cache_control" not in answer[0]
    assert result == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "Found.", "cache_control": five}
    ]


def test_a_tool_calls_own_cache_control_stays_on_its_tool_use(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    # LiteLLM takes a breakpoint on an assistant message's tool call too (on its tool_use):
    # an agent marks the last call of a long tool loop so the next turn reads the loop cached.
    _, client = box.new_user()
    five = {"type": "ephemeral"}
    calls = [
        {"id": "call_1", "type": "function", "function": {"name": "look", "arguments": "{}"}},
        {"id": "call_2", "type": "function", "function": {"name": "look", "arguments": "{}"},
         "cache_control": five},
    ]  # fmt: skip
    messages: list[Any] = [
        {"role": "user", "content": "Look twice."},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_1", "content": "One."},
        {"role": "tool", "tool_call_id": "call_2", "content": "Two."},
    ]
    client.chat.completions.create(
        model=MODEL, messages=messages, tools=[{"type": "function", "function": {"name": "look"}}]
    )
    [sent] = fresh_fake.requests
    first, second = sent.body["messages"][1]["content"]
    assert "cache_control" not in first
    assert second == {
        "type": "tool_use",
        "id": "call_2",
        "name": "look",
        "input": {},
        "cache_control": five,
    }


def test_a_cache_control_inside_a_tools_function_stays_on_the_tool(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    # LiteLLM takes a tool's breakpoint beside its function's name too (the tool's own first):
    # dropped, a large tool set was read at the full input price on every call.
    _, client = box.new_user()
    hour = {"type": "ephemeral", "ttl": "1h"}
    tools: list[Any] = [
        {"type": "function", "function": {"name": "look"}},
        {"type": "function", "function": {"name": "read", "cache_control": hour}},
    ]
    client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Look."}], tools=tools
    )
    [sent] = fresh_fake.requests
    first, second = sent.body["tools"]
    assert "cache_control" not in first
    assert second["cache_control"] == hour


def test_a_conversation_begun_on_a_model_that_numbers_its_calls_goes_on_with_claude(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    # A model that numbers its calls per answer gave both tool rounds the id "call_0" (OpenAI
    # takes that); the conversation goes on with Claude, which refuses a repeated tool_use id.
    _, client = box.new_user()
    fresh_fake.script(Reply(text="Sunny in Paris, rain in Oslo."))
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris, then Oslo?"}]
    for city, weather in (("Paris", "sunny"), ("Oslo", "rain")):
        arguments = f'{{"city": "{city}"}}'
        call = {"id": "call_0", "type": "function",
                "function": {"name": "get_weather", "arguments": arguments}}  # fmt: skip
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_0", "content": weather},
        ]
    tool: Any = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
    answer = client.chat.completions.create(model=MODEL, messages=messages, tools=[tool])
    assert answer.choices[0].message.content == "Sunny in Paris, rain in Oslo."
    [sent] = fresh_fake.requests
    uses = [turn["content"][0]["id"] for turn in sent.body["messages"][1::2]]
    answers = [turn["content"][0]["tool_use_id"] for turn in sent.body["messages"][2::2]]
    assert len(set(uses)) == 2
    assert answers == uses


def test_a_jpeg_labelled_png_reaches_claude_as_a_jpeg(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    # A client that worked on OpenAI (which reads the bytes) sends a JPEG snapshot as
    # data:image/png; Anthropic would refuse it: "Image does not match the provided media type".
    _, client = box.new_user()
    fresh_fake.script(Reply(text="A parcel at the door."))
    jpeg = "/9j/4AAQSkZJRgABAQA="
    part: Any = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{jpeg}"}}
    answer = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": [part, {"type": "text", "text": "What is it?"}]}],
    )
    assert answer.choices[0].message.content == "A parcel at the door."
    [sent] = fresh_fake.requests
    source = sent.body["messages"][0]["content"][0]["source"]
    assert source == {"type": "base64", "media_type": "image/jpeg", "data": jpeg}
