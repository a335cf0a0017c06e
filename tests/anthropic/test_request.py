"""OpenAI chat request -> Anthropic Messages request: the pure translation and its 400s."""

from __future__ import annotations

from typing import Any

import pytest

from codelace_box.errors import InvalidRequest
from codelace_box.providers import adapter_for
from codelace_box.providers.anthropic import AnthropicAdapter
from codelace_box.providers.base import UpstreamTarget
from tests.anthropic.wire import load_json
from tests.fakes.anthropic_validation import request_problem

ADAPTER = adapter_for("anthropic")
HELLO = [{"role": "user", "content": "Hello"}]


def build(body: dict[str, Any], *, stream: bool = False, default: int | None = 8192) -> Any:
    """Check then translate, as the gateway does; the result must pass the strict fake."""
    ADAPTER.check_request(body)
    request = ADAPTER.build_request(
        body,
        UpstreamTarget(
            upstream_model="claude-opus-4-6",
            api_key="sk-ant-unit",
            base_url="https://api.anthropic.com",
            stream=stream,
            default_max_tokens=default,
        ),
    )
    assert request_problem(request.json_body) is None, request_problem(request.json_body)
    return request.json_body


def test_adapter_identity_and_wire_request() -> None:
    assert isinstance(ADAPTER, AnthropicAdapter)
    assert ADAPTER.kind == "anthropic"
    assert ADAPTER.default_base_url == "https://api.anthropic.com"
    request = ADAPTER.build_request(
        {"messages": HELLO},
        UpstreamTarget(
            upstream_model="claude-opus-4-6",
            api_key="sk-ant-secret",
            base_url="http://127.0.0.1:9999/",
            stream=False,
            default_max_tokens=None,
        ),
    )
    assert request.url == "http://127.0.0.1:9999/v1/messages"
    assert request.headers == {
        "x-api-key": "sk-ant-secret",
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
    }
    assert request.json_body == {
        "model": "claude-opus-4-6",
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
    }


def test_recorded_tool_conversation_translates_exactly() -> None:
    body = load_json("request_tools.openai.json")
    assert build(body, stream=True) == load_json("request_tools.anthropic.json")


@pytest.mark.parametrize(
    ("fields", "default", "expected"),
    [
        ({"max_completion_tokens": 300, "max_tokens": 200}, 8192, 300),
        ({"max_tokens": 200}, 8192, 200),
        ({}, 64000, 64000),
        ({}, None, 4096),
    ],
)
def test_max_tokens(fields: dict[str, Any], default: int | None, expected: int) -> None:
    assert build({"messages": HELLO, **fields}, default=default)["max_tokens"] == expected


def test_consecutive_same_role_messages_merge_and_tool_results_lead() -> None:
    call = {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": ""}}
    body = {
        "messages": [
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "assistant", "content": [{"type": "text", "text": "c"}], "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": ""},
            {"role": "user", "content": "d"},
        ],
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }
    turns = build(body)["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"] == [
        {"type": "text", "text": "b"},
        {"type": "text", "text": "c"},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
    ]
    assert turns[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1"},
        {"type": "text", "text": "d"},
    ]


TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
]


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, None, None),
    ],
)
def test_tool_choice(choice: Any, parallel: bool | None, expected: dict[str, Any] | None) -> None:
    body: dict[str, Any] = {"messages": HELLO, "tools": TOOLS}
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    out = build(body)
    assert out["tools"] == [{"name": "get_weather", "input_schema": {"type": "object"}}]
    assert out.get("tool_choice") == expected


@pytest.mark.parametrize(
    ("effort", "max_tokens", "budget"),
    [
        ("minimal", 8000, 1024),  # 10% is 800: Anthropic's least budget
        ("minimal", 20000, 2000),
        ("low", 8000, 1600),
        ("medium", 8000, 4000),
        ("high", 8000, 6400),
        ("high", 1100, 1024),
        ("xhigh", 8000, 7600),
        ("xhigh", 400_000, 128_000),
        ("max", 8000, 7600),
    ],
)
def test_reasoning_effort_budget(effort: str, max_tokens: int, budget: int) -> None:
    """OpenRouter's shares of max_tokens per effort (its reasoning tokens guide): minimal
    about 10%, low 20%, medium 50%, high 80%, xhigh 95%; at least 1024, at most 128000."""
    out = build({"messages": HELLO, "reasoning_effort": effort, "max_tokens": max_tokens})
    assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert 1024 <= budget < max_tokens


def test_reasoning_effort_none_and_too_small_max_tokens() -> None:
    assert "thinking" not in build({"messages": HELLO, "reasoning_effort": "none"})
    with pytest.raises(InvalidRequest, match="above 1024"):
        build({"messages": HELLO, "reasoning_effort": "low", "max_tokens": 1024})


def _tool_loop(thinking_blocks: list[dict[str, Any]] | None) -> dict[str, Any]:
    call = {
        "id": "toolu_9",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
    }
    assistant: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
    if thinking_blocks is not None:
        assistant["thinking_blocks"] = thinking_blocks
    return {
        "messages": [
            *HELLO,
            assistant,
            {"role": "tool", "tool_call_id": "toolu_9", "content": "-3C"},
        ],
        "tools": TOOLS,
        "reasoning_effort": "medium",
        "max_tokens": 4000,
    }


def test_tool_loop_without_thinking_blocks_turns_thinking_off() -> None:
    assert "thinking" not in build(_tool_loop(None))


def test_tool_loop_with_thinking_blocks_passes_them_back_first() -> None:
    block = {"type": "thinking", "thinking": "Check Oslo.", "signature": "EqQBsig"}
    out = build(_tool_loop([block]))
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert out["messages"][1]["content"][0] == block


def test_response_format_json_schema_maps_to_output_config() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "n", "schema": schema, "strict": True}}
    out = build({"messages": HELLO, "response_format": fmt})
    strict = {**schema, "additionalProperties": False}  # as Anthropic's subset wants objects
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": strict}}
    assert "output_config" not in build({"messages": HELLO, "response_format": {"type": "text"}})


def test_images_and_pdf() -> None:
    parts = [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}},
        {
            "type": "file",
            "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
        },
    ]
    content = build({"messages": [{"role": "user", "content": parts}]})["messages"][0]["content"]
    assert content == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.webp"}},
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        },
    ]


def test_stop_user_and_sampling() -> None:
    out = build({"messages": HELLO, "stop": "###", "user": "u-1", "temperature": 0, "top_p": 1})
    assert out["stop_sequences"] == ["###"]
    assert out["metadata"] == {"user_id": "u-1"}
    # top_p 1 is no restriction at all; current Claude models refuse temperature and top_p
    # together ("Please use only one."), and OpenAI clients send top_p 1 by default
    assert out["temperature"] == 0
    assert "top_p" not in out
    assert build({"messages": HELLO, "top_p": 0.9})["top_p"] == 0.9


BAD_REQUESTS = [
    ({"n": 2}, "n > 1"),
    ({"logprobs": True}, "logprobs"),
    ({"top_logprobs": 3}, "logprobs"),
    ({"temperature": 1.5}, "between 0 and 1"),
    ({"temperature": 0.5, "top_p": 0.9}, "only one of temperature and top_p"),
    ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"logit_bias": {"50256": -100}}, "logit_bias"),
    ({"modalities": ["text", "audio"]}, "audio"),
    ({"reasoning_effort": "high", "temperature": 0.3}, "temperature"),
    ({"reasoning_effort": "high", "tools": TOOLS, "tool_choice": "required"}, "tool_choice"),
    ({"reasoning_effort": "enormous"}, "reasoning_effort"),
    ({"response_format": {"type": "json_object"}}, "json_schema"),
    ({"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "nope"),
    ({"tools": [{"type": "custom", "custom": {"name": "x"}}]}, "function tools"),
    ({"max_tokens": 0}, "positive integer"),
    ({"functions": [{"name": "f", "parameters": {}}]}, "send tools"),
    ({"function_call": "auto"}, "send tools"),
    ({"web_search_options": {}}, "web_search_options"),
    ({"stop": ["END", "\n"]}, "whitespace"),
    ({"stop": " "}, "whitespace"),
    ({"top_k": -1}, "top_k"),
    ({"reasoning_effort": "high", "top_k": 5}, "top_k"),
    ({"thinking": {"type": "adaptive"}, "reasoning_effort": "low"}, "not both"),
    ({"verbosity": "high"}, "verbosity"),
    ({"repetition_penalty": 1.1}, "repetition_penalty"),
]


@pytest.mark.parametrize(("fields", "words"), BAD_REQUESTS)
def test_unhonourable_fields_are_a_clear_400(fields: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidRequest, match=words) as caught:
        ADAPTER.check_request({"messages": HELLO, **fields})
    assert caught.value.status == 400


BAD_MESSAGES = [
    ([], "non-empty list"),
    ([{"role": "system", "content": "only system"}], "at least one user message"),
    ([{"role": "assistant", "content": "hi"}, *HELLO], "start with a user message"),
    ([*HELLO, {"role": "tool", "tool_call_id": "toolu_x", "content": "r"}], "toolu_x"),
    ([{"role": "user", "content": ""}], "non-empty content"),
    ([{"role": "function", "name": "f", "content": "x"}], "role must be"),
    ([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}], "input_audio"),
    (
        [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}
                ],
            }
        ],
        "image/bmp",
    ),
    (
        [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}],
            }
        ],
        "data URL",
    ),
    (
        [
            *HELLO,
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
                ],
            },
        ],
        "not valid JSON",
    ),
    (
        [
            *HELLO,
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "t", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
                ],
            },
        ],
        "JSON object",
    ),
]


@pytest.mark.parametrize(("messages", "words"), BAD_MESSAGES)
def test_untranslatable_messages_are_a_clear_400(messages: list[Any], words: str) -> None:
    with pytest.raises(InvalidRequest, match=words):
        ADAPTER.check_request({"messages": messages})
