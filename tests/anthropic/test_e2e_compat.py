"""End to end: what OpenAI, LiteLLM and OpenRouter users send, through the box to Anthropic.

The openai SDK -> the real box -> the strict fake Anthropic API. Each case is one that other
gateways' users reported going wrong: a field silently dropped, a no-op refused, a shape the
upstream refuses.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.anthropic.conftest import (
    ADAPTIVE_MODEL,
    MAX_OUTPUT,
    MODEL,
    OLDER_MODEL,
    AnthropicBox,
)
from tests.fakes.anthropic_upstream import FakeAnthropic, Reply

pytestmark = pytest.mark.timeout(60)

HELLO: list[Any] = [{"role": "user", "content": "Hello"}]


def test_top_k_reaches_anthropic(box: AnthropicBox, fresh_fake: FakeAnthropic) -> None:
    """Anthropic's own sampling field, as LiteLLM and OpenRouter pass it on."""
    _, client = box.new_user()
    client.chat.completions.create(model=MODEL, messages=HELLO, extra_body={"top_k": 5})
    assert fresh_fake.requests[0].body["top_k"] == 5
    # 0 is OpenRouter's default and means no restriction: nothing to send
    client.chat.completions.create(model=MODEL, messages=HELLO, extra_body={"top_k": 0})
    assert "top_k" not in fresh_fake.requests[1].body


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"reasoning": {"effort": "high", "summary": "auto"}}, "reasoning"),  # OpenRouter's: 4 keys
        ({"verbosity": "low"}, "verbosity"),
        ({"repetition_penalty": 1.2}, "repetition_penalty"),
        ({"min_p": 0.1}, "min_p"),
        ({"top_k": -1}, "top_k"),
        ({"top_k": 2.5}, "top_k"),
    ],
)
def test_fields_that_would_change_the_answer_are_refused_not_dropped(
    box: AnthropicBox, fresh_fake: FakeAnthropic, extra: dict[str, Any], param: str
) -> None:
    _, client = box.new_user()
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=HELLO, max_tokens=4000, extra_body=extra
        )
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["param"] == param
    assert param in error["message"]
    assert fresh_fake.requests == []


def test_fields_that_change_neither_answer_nor_price_are_accepted(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    _, client = box.new_user()
    completion = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        seed=7,
        store=False,
        metadata={"team": "a"},
        service_tier="auto",
        prediction={"type": "content", "content": "Hello"},
        extra_body={"prompt_cache_key": "k1", "verbosity": "medium"},
    )
    assert completion.choices[0].message.content == "Hello!"
    sent = fresh_fake.requests[0].body
    assert set(sent) == {"model", "max_tokens", "messages"}


PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
PIXEL += "AAAABJRU5ErkJggg=="
PDF = "JVBERi0="
SCREENSHOT_TOOLS: list[Any] = [
    {"type": "function", "function": {"name": "screenshot", "parameters": {"type": "object"}}}
]


def _screenshot_turns(result: Any) -> list[Any]:
    call = {"id": "call_1", "type": "function",
            "function": {"name": "screenshot", "arguments": "{}"}}  # fmt: skip
    return [
        {"role": "user", "content": "What is on my screen?"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": result},
    ]


def test_a_tool_result_with_an_image_and_a_pdf_reaches_claude(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    """Computer-use and file-reading agents answer a tool call with media (LiteLLM takes it):
    Anthropic's tool_result holds image and document blocks, so nothing needs refusing."""
    _, client = box.new_user()
    result = [
        {"type": "text", "text": "Here it is"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/shot.png"}},
        {"type": "file",
         "file": {"filename": "a.pdf", "file_data": f"data:application/pdf;base64,{PDF}"}},
    ]  # fmt: skip
    completion = client.chat.completions.create(
        model=MODEL, messages=_screenshot_turns(result), tools=SCREENSHOT_TOOLS
    )
    assert completion.choices[0].message.content == "Hello!"
    block = fresh_fake.requests[0].body["messages"][2]["content"][0]
    assert block == {
        "type": "tool_result",
        "tool_use_id": "call_1",
        "content": [
            {"type": "text", "text": "Here it is"},
            {"type": "image",
             "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/shot.png"}},
            {"type": "document",
             "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}},
        ],
    }  # fmt: skip


def test_a_tool_result_part_claude_cannot_take_is_a_400_naming_it(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    _, client = box.new_user()
    audio = [{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=_screenshot_turns(audio), tools=SCREENSHOT_TOOLS
        )
    assert "input_audio" in str(caught.value)
    assert fresh_fake.requests == []


def test_no_op_logprob_fields_are_accepted(box: AnthropicBox, fresh_fake: FakeAnthropic) -> None:
    """logprobs false with top_logprobs 0 asks for nothing (OpenAI takes it): no 400."""
    _, client = box.new_user()
    completion = client.chat.completions.create(
        model=MODEL, messages=HELLO, logprobs=False, top_logprobs=0
    )
    assert completion.choices[0].message.content == "Hello!"
    with pytest.raises(openai.BadRequestError, match="logprobs"):
        client.chat.completions.create(model=MODEL, messages=HELLO, top_logprobs=2)
    assert len(fresh_fake.requests) == 1


def test_a_tool_schema_without_a_type_is_sent_as_an_object(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    """Function parameters are always an object; Anthropic refuses an input_schema that does
    not say so ("input_schema.type: Input should be 'object'"), so the box says it."""
    _, client = box.new_user()
    tools: list[Any] = [
        {"type": "function", "function": {"name": "f", "parameters": {"properties": {"a": {}}}}}
    ]
    client.chat.completions.create(model=MODEL, messages=HELLO, tools=tools)
    schema = fresh_fake.requests[0].body["tools"][0]["input_schema"]
    assert schema == {"type": "object", "properties": {"a": {}}}


def test_tool_choice_required_without_tools_is_a_400(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    """OpenAI refuses it; answering with text while the client required a tool call would
    hand it an answer it did not ask for. auto and none without tools stay harmless."""
    _, client = box.new_user()
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO, tool_choice="required")
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "tool_choice"
    assert fresh_fake.requests == []
    for choice in ("auto", "none"):
        client.chat.completions.create(model=MODEL, messages=HELLO, tool_choice=choice)
    assert [set(r.body) for r in fresh_fake.requests] == [{"model", "max_tokens", "messages"}] * 2


def test_names_that_tell_speakers_of_one_role_apart_are_a_400(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    """Anthropic has no `name`: dropping two users' names would merge them into one speaker
    ("What did Sam say?" could no longer be answered), so that is refused, naming the field."""
    _, client = box.new_user()
    group: list[Any] = [
        {"role": "user", "name": "Adam", "content": "I am from Seattle."},
        {"role": "user", "name": "Sam", "content": "I am from Tacoma."},
        {"role": "user", "name": "Adam", "content": "What did Sam say?"},
    ]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=group)
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == "messages[1].name"
    assert fresh_fake.requests == []


def test_one_name_per_role_is_harmless_and_accepted(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    _, client = box.new_user()
    chat: list[Any] = [
        {"role": "user", "name": "alice", "content": "Hi"},
        {"role": "assistant", "name": "helper", "content": "Hello alice"},
        {"role": "user", "name": "alice", "content": "Bye"},
    ]
    assert client.chat.completions.create(model=MODEL, messages=chat).choices[0].message.content
    assert len(fresh_fake.requests[0].body["messages"]) == 3


def test_an_assistant_refusal_handed_back_stays_in_the_conversation(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    """OpenAI gives a refused answer as message.refusal with content null, and SDKs hand the
    message back so: dropped, Claude would not know it had refused (and two user turns merge)."""
    _, client = box.new_user()
    turns: list[Any] = [
        {"role": "user", "content": "Tell me a secret"},
        {"role": "assistant", "content": None, "refusal": "I can't share that."},
        {"role": "user", "content": "Why not?"},
    ]
    client.chat.completions.create(model=MODEL, messages=turns)
    sent = fresh_fake.requests[0].body["messages"]
    assert [turn["role"] for turn in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"] == [{"type": "text", "text": "I can't share that."}]


@pytest.mark.parametrize(
    "message",
    [
        "prompt is too long: 210403 tokens > 200000 maximum",
        "input length and `max_tokens` exceed context limit: 174167 + 64000 > 200000, decrease "
        "input length or `max_tokens` and try again",
    ],
)
def test_a_context_overflow_carries_openais_code(
    box: AnthropicBox, fresh_fake: FakeAnthropic, message: str
) -> None:
    """Agents compact their history when the error's code is context_length_exceeded (as
    OpenAI sends it, and LiteLLM maps Anthropic's words to): upstream_400 told them nothing."""
    _, client = box.new_user()
    fresh_fake.script(Reply.error(400, "invalid_request_error", message))
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.code == "context_length_exceeded"
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "messages"
    assert message in caught.value.message


def test_other_upstream_refusals_keep_their_upstream_code(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    _, client = box.new_user()
    fresh_fake.script(Reply.error(400, "invalid_request_error", "messages.0: bad"))
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.code == "upstream_400"


def test_refusals_name_the_field_the_client_sent(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    _, client = box.new_user()
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=HELLO, reasoning_effort="low", max_completion_tokens=500
        )
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["param"] == "max_completion_tokens"
    assert "max_completion_tokens" in caught.value.message
    text_file = {"filename": "a.txt", "file_data": "data:text/plain;base64,aGk="}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": [{"type": "file", "file": text_file}]}],
        )
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["param"] == "messages[0].content[0]"
    assert fresh_fake.requests == []


def test_older_claude_models_take_temperature_and_top_p_together(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    """Only Claude Opus 4.1 and later refuse the pair ("cannot both be specified for this
    model"); Claude Sonnet 4 and older take both, so the box must not refuse them there."""
    _, client = box.new_user()
    client.chat.completions.create(model=OLDER_MODEL, messages=HELLO, temperature=0.5, top_p=0.9)
    sent = fresh_fake.requests[0].body
    assert (sent["temperature"], sent["top_p"]) == (0.5, 0.9)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO, temperature=0.5, top_p=0.9)
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "top_p"
    assert len(fresh_fake.requests) == 1


def test_anthropics_own_thinking_field_turns_thinking_on_as_litellm_takes_it(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    _, client = box.new_user()
    fresh_fake.script(Reply(thinking="Let me think.", text="42"))
    budget = {"type": "enabled", "budget_tokens": 2000}
    completion = client.chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=4000, extra_body={"thinking": budget}
    )
    assert completion.choices[0].message.content == "42"
    assert completion.choices[0].message.model_dump()["reasoning_content"] == "Let me think."
    client.chat.completions.create(
        model=ADAPTIVE_MODEL, messages=HELLO, extra_body={"thinking": {"type": "adaptive"}}
    )
    client.chat.completions.create(
        model=MODEL, messages=HELLO, extra_body={"thinking": {"type": "disabled"}}
    )
    sent = [request.body.get("thinking") for request in fresh_fake.requests]
    assert sent == [budget, {"type": "adaptive", "display": "summarized"}, None]


def test_a_thinking_budget_is_held_against_the_models_own_output_cap(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    """Without max_tokens the call is sent with the model's output cap (32,000 here), but the
    budget was checked against a 4,096 fallback: a budget of 8,000, which Anthropic takes
    under that cap, was a 400 "must be below max_tokens (4096)"."""
    _, client = box.new_user()
    budget = {"type": "enabled", "budget_tokens": 8000}
    client.chat.completions.create(model=MODEL, messages=HELLO, extra_body={"thinking": budget})
    sent = fresh_fake.requests[0].body
    assert (sent["max_tokens"], sent["thinking"]) == (MAX_OUTPUT, budget)
    with pytest.raises(openai.BadRequestError) as caught:  # at or past the cap: still refused
        client.chat.completions.create(
            model=MODEL, messages=HELLO,
            extra_body={"thinking": {"type": "enabled", "budget_tokens": MAX_OUTPUT}},
        )  # fmt: skip
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["param"] == "thinking.budget_tokens"
    assert len(fresh_fake.requests) == 1


@pytest.mark.parametrize(
    ("model", "fields", "param"),
    [
        (MODEL, {"max_tokens": 2000, "thinking": {"type": "enabled", "budget_tokens": 2000}},
         "thinking.budget_tokens"),
        (MODEL, {"thinking": {"type": "enabled", "budget_tokens": 100}}, "thinking.budget_tokens"),
        (MODEL, {"thinking": {"type": "enabled"}}, "thinking.budget_tokens"),
        (MODEL, {"thinking": {"type": "on"}}, "thinking"),
        (MODEL, {"thinking": {"type": "adaptive", "budget_tokens": 2000}}, "thinking"),
        (MODEL, {"thinking": {"type": "adaptive"}, "reasoning_effort": "high"}, "thinking"),
        (MODEL, {"thinking": {"type": "adaptive"}, "temperature": 0.2}, "temperature"),
        (ADAPTIVE_MODEL, {"thinking": {"type": "enabled", "budget_tokens": 2000}}, "thinking"),
    ],
)  # fmt: skip
def test_a_thinking_anthropic_would_refuse_is_a_400_naming_the_field(
    box: AnthropicBox, fresh_fake: FakeAnthropic, model: str, fields: dict[str, Any], param: str
) -> None:
    _, client = box.new_user()
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=model, messages=HELLO, extra_body=fields)
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == param
    assert fresh_fake.requests == []


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("refusal", "content_filter"),
    ],
)
def test_every_stop_reason_has_openais_finish_reason_streamed_or_not(
    box: AnthropicBox, fresh_fake: FakeAnthropic, stop_reason: str, finish_reason: str
) -> None:
    _, client = box.new_user()
    fresh_fake.script(*[Reply(text="partial", stop_reason=stop_reason)] * 2)
    completion = client.chat.completions.create(model=MODEL, messages=HELLO)
    assert completion.choices[0].finish_reason == finish_reason
    stream = client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    reasons = [c.choices[0].finish_reason for c in stream if c.choices]
    assert [r for r in reasons if r is not None] == [finish_reason]


def test_a_top_level_cache_control_reaches_anthropic(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    """Anthropic's automatic prompt caching (one top-level breakpoint on the last cacheable
    block), as OpenRouter takes it beside the OpenAI fields."""
    _, client = box.new_user()
    control = {"type": "ephemeral", "ttl": "1h"}
    client.chat.completions.create(
        model=MODEL, messages=HELLO, extra_body={"cache_control": control}
    )
    assert fresh_fake.requests[0].body["cache_control"] == control
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=HELLO, extra_body={"cache_control": {"type": "forever"}}
        )
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "cache_control"
    assert len(fresh_fake.requests) == 1
