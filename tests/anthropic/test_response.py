"""Anthropic `message` bodies and error bodies -> OpenAI completions, usage and messages."""

from __future__ import annotations

import json

import pytest

from codelace_box.providers import adapter_for
from codelace_box.providers.anthropic_response import finish_reason
from tests.anthropic.wire import DATA, load_json

ADAPTER = adapter_for("anthropic")
MODEL = "anthropic/claude-opus-4.6"


def test_text_message() -> None:
    completion, usage = ADAPTER.parse_response(load_json("message_text.json"), MODEL)
    assert completion["id"] == "chatcmpl-msg_013Zva2CMHLNnXjNJJKqJ2EF"
    assert completion["object"] == "chat.completion"
    assert completion["model"] == MODEL
    assert isinstance(completion["created"], int)
    assert completion["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hi! My name is Claude."},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert (usage.input_tokens, usage.output_tokens) == (2095, 503)
    assert completion["usage"] == {
        "prompt_tokens": 2095,
        "completion_tokens": 503,
        "total_tokens": 2598,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def test_tool_use_message_with_cache_writes() -> None:
    completion, usage = ADAPTER.parse_response(load_json("message_tool_use.json"), MODEL)
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert (
        choice["message"]["content"] == "I'll check the current weather in San Francisco for you."
    )
    [call] = choice["message"]["tool_calls"]
    assert call["id"] == "toolu_01A09q90qw90lq917835lq9"
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {
        "location": "San Francisco, CA",
        "unit": "celsius",
    }
    # input = uncached 21 + cache writes 188086 + cache reads 0
    assert (usage.input_tokens, usage.output_tokens) == (188107, 393)
    assert completion["usage"]["prompt_tokens_details"] == {
        "cached_tokens": 0,
        "cache_write_tokens": 188086,
    }


def test_tool_only_message_has_null_content() -> None:
    payload = load_json("message_tool_use.json")
    payload["content"] = payload["content"][1:]
    completion, _ = ADAPTER.parse_response(payload, MODEL)
    message = completion["choices"][0]["message"]
    assert message["content"] is None
    assert len(message["tool_calls"]) == 1


def test_thinking_message_gives_reasoning_and_signed_blocks() -> None:
    payload = load_json("message_thinking.json")
    completion, usage = ADAPTER.parse_response(payload, MODEL)
    choice = completion["choices"][0]
    assert choice["finish_reason"] == "length"
    message = choice["message"]
    assert message["content"] == "Based on my analysis..."
    assert message["reasoning_content"] == "Let me analyze this step by step..."
    assert message["thinking_blocks"] == payload["content"][:2]
    assert completion["usage"]["completion_tokens_details"] == {"reasoning_tokens": 1900}
    assert (usage.input_tokens, usage.output_tokens) == (30, 2048)


def test_openrouter_reasoning_gets_its_own_field_or_none_when_excluded() -> None:
    """A client that asked with OpenRouter's `reasoning` reads `message.reasoning`; with
    `exclude: true` it gets no thinking text at all (still billed: usage is the same)."""
    payload = load_json("message_thinking.json")
    shown = ADAPTER.for_call({"reasoning": {"effort": "high"}})
    message = shown.parse_response(payload, MODEL)[0]["choices"][0]["message"]
    assert message["reasoning"] == message["reasoning_content"]
    assert message["reasoning"] == "Let me analyze this step by step..."
    assert message["thinking_blocks"] == payload["content"][:2]
    hidden = ADAPTER.for_call({"reasoning": {"effort": "high", "exclude": True}})
    completion, usage = hidden.parse_response(payload, MODEL)
    message = completion["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "Based on my analysis..."}
    assert completion["usage"]["completion_tokens_details"] == {"reasoning_tokens": 1900}
    assert (usage.input_tokens, usage.output_tokens) == (30, 2048)
    assert ADAPTER.for_call({"reasoning_effort": "high"}) is ADAPTER  # LiteLLM's shape alone


def test_cache_reads_count_as_input_and_cached_tokens() -> None:
    payload = load_json("message_text.json")
    payload["usage"] = {
        "input_tokens": 10,
        "cache_read_input_tokens": 5000,
        "cache_creation_input_tokens": 0,
        "output_tokens": 7,
    }
    completion, usage = ADAPTER.parse_response(payload, MODEL)
    assert usage.input_tokens == 5010
    assert completion["usage"]["prompt_tokens_details"] == {"cached_tokens": 5000}
    assert completion["usage"]["total_tokens"] == 5017


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
        (None, "stop"),
        ("something_new", "stop"),
    ],
)
def test_finish_reasons(stop_reason: str | None, expected: str) -> None:
    assert finish_reason(stop_reason) == expected


def test_error_messages() -> None:
    overloaded = (DATA / "error_overloaded.json").read_bytes()
    assert ADAPTER.error_message(529, overloaded) == (
        "Anthropic API error 529: overloaded_error: Overloaded"
    )
    auth = (DATA / "error_authentication.json").read_bytes()
    assert ADAPTER.error_message(401, auth) == (
        "Anthropic API error 401: authentication_error: invalid x-api-key"
    )
    assert ADAPTER.error_message(502, b"<html>bad gateway</html>") == "Anthropic API error 502"
    long_body = json.dumps({"type": "error", "error": {"type": "x", "message": "m" * 5000}})
    assert len(ADAPTER.error_message(400, long_body.encode())) < 600
