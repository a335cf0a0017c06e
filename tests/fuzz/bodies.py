"""Well-formed request bodies of every inference dialect, rich enough that every field a
client may send is in one of them (tools, images, tool calls and results, thinking, reasoning,
structured output, cache control), each answered 200 by the fuzz box: the seeds the body
sweep (test_bodies.py) breaks one value at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.fuzz.conftest import CHAT_MODEL, CLAUDE_MODEL, NATIVE_MODEL

PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5E"
    "rkJggg=="
)
OBJECT = {"type": "object", "properties": {"a": {"type": "string"}}}
CHAT_TOOL = {
    "type": "function", "function": {"name": "f", "description": "d", "parameters": OBJECT},
}  # fmt: skip
SCHEMA = {
    "type": "object",
    "properties": {
        "day": {"type": "string", "format": "date"},
        "list": {"type": "array", "items": {"type": "integer"}, "minItems": 1},
    },
    "required": ["day", "list"],
    "additionalProperties": False,
}
CHAT = {
    "model": CHAT_MODEL, "max_tokens": 5, "temperature": 0.5, "stop": ["x"], "seed": 1,
    "messages": [
        {"role": "system", "content": "s"},
        {"role": "user", "content": [
            {"type": "text", "text": "hi"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "r"},
    ],
    "tools": [CHAT_TOOL], "tool_choice": "auto", "stream_options": {"include_usage": True},
    "response_format": {"type": "json_object"}, "user": "u", "metadata": {"k": "v"},
}  # fmt: skip
CLAUDE_CHAT = {
    "model": CLAUDE_MODEL, "max_tokens": 2000,
    "messages": [{"role": "user", "content": [
        {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral", "ttl": "5m"}},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]}],
    "tools": [CHAT_TOOL], "tool_choice": "auto",
}  # fmt: skip
MESSAGES = {
    "model": CLAUDE_MODEL, "max_tokens": 2000, "system": [{"type": "text", "text": "s"}],
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        ]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
        ]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "r"}]},
    ],
    "tools": [{"name": "f", "description": "d", "input_schema": OBJECT}],
    "tool_choice": {"type": "auto"}, "metadata": {"user_id": "u"}, "stop_sequences": ["x"],
}  # fmt: skip
RESPONSES = {
    "model": CHAT_MODEL, "instructions": "i", "max_output_tokens": 5,
    "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "r"},
    ],
    "tools": [
        {"type": "function", "name": "f", "parameters": OBJECT},
        {"type": "namespace", "name": "ns", "tools": [
            {"type": "function", "name": "g", "parameters": OBJECT},
        ]},
        {"type": "web_search"},
    ],
    "tool_choice": "auto", "text": {"format": {"type": "text"}}, "reasoning": {"effort": "low"},
    "include": ["reasoning.encrypted_content"], "prompt_cache_key": "k", "store": False,
}  # fmt: skip

PDF = "data:application/pdf;base64,JVBERi0="
CONVERSATION = [
    {"role": "developer", "content": "be brief"},
    {"role": "user", "name": "bob", "content": [
        {"type": "text", "text": "hi"},
        {"type": "image_url", "image_url": {"url": "https://example.test/x.png", "detail": "low"}},
        {"type": "file", "file": {"file_data": PDF, "filename": "a.pdf"}},
    ]},
    {"role": "assistant", "content": "calling", "reasoning_content": "thought", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": "x"}'}},
    ]},
    {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "r"}]},
    {"role": "user", "content": "go on"},
]  # fmt: skip
MESSAGES_TO_OPENAI = {
    "model": CHAT_MODEL, "max_tokens": 50, "system": "s", "top_k": 5,
    "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "hi"},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                            "data": "JVBERi0="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.test/x.png"}},
        ]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "t", "signature": "sig"},
            {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "r"}],
             "is_error": False},
        ]},
    ],
    "tools": [{"name": "f", "description": "d", "input_schema": OBJECT,
               "cache_control": {"type": "ephemeral"}}],
    "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": True},
    "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}},
}  # fmt: skip
RESPONSES_ITEMS = {
    "model": CHAT_MODEL, "temperature": 0.1, "top_p": 0.5, "parallel_tool_calls": False,
    "input": [
        {"role": "user", "content": "hi"},
        {"type": "reasoning", "id": "r1", "summary": [{"type": "summary_text", "text": "s"}],
         "encrypted_content": "e"},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "ok", "annotations": []}]},
        {"type": "custom_tool_call", "call_id": "c2", "name": "c", "input": "x"},
        {"type": "custom_tool_call_output", "call_id": "c2", "output": "o"},
        {"role": "user", "content": [
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
            {"type": "input_file", "file_data": PDF, "filename": "a.pdf"},
        ]},
    ],
    "tools": [
        {"type": "custom", "name": "c",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: /x/"}},
        {"type": "function", "name": "f", "parameters": OBJECT},
    ],
    "tool_choice": {"type": "function", "name": "c"},
    "text": {"format": {"type": "json_schema", "name": "s", "schema": SCHEMA, "strict": True},
             "verbosity": "low"},
}  # fmt: skip
ALLOWED_TOOLS = {"type": "allowed_tools", "mode": "required",
                 "tools": [{"type": "function", "name": "f"}]}  # fmt: skip

# (name, route, body): each answered 200 as it is
SEEDS: list[tuple[str, str, dict[str, Any]]] = [
    ("chat", "/v1/chat/completions", CHAT),
    ("chat-claude-thinking", "/v1/chat/completions",
     {**CLAUDE_CHAT,
      "thinking": {"type": "enabled", "budget_tokens": 1024, "display": "summarized"}}),
    ("chat-claude-reasoning", "/v1/chat/completions",
     {**CLAUDE_CHAT, "reasoning": {"effort": "low", "exclude": False}}),
    ("chat-claude-effort", "/v1/chat/completions", {**CLAUDE_CHAT, "reasoning_effort": "low"}),
    ("chat-claude-schema", "/v1/chat/completions",
     {**CLAUDE_CHAT, "tools": None, "tool_choice": None, "response_format":
      {"type": "json_schema", "json_schema": {"name": "s", "strict": True, "schema": SCHEMA}}}),
    ("messages-claude", "/v1/messages", MESSAGES),
    ("messages-claude-thinking", "/v1/messages",
     {"model": CLAUDE_MODEL, "max_tokens": 2000, "messages": [{"role": "user", "content": "hi"}],
      "thinking": {"type": "enabled", "budget_tokens": 1024}, "output_config": {"effort": "low"}}),
    ("messages-openai", "/v1/messages",
     {**MESSAGES, "model": CHAT_MODEL, "thinking": {"type": "enabled", "budget_tokens": 1024},
      "output_config": {"effort": "low"}}),
    ("count-tokens", "/v1/messages/count_tokens",
     {key: value for key, value in MESSAGES.items() if key not in ("metadata", "stop_sequences")}),
    ("responses", "/v1/responses", RESPONSES),
    ("responses-native", "/v1/responses", {**RESPONSES, "model": NATIVE_MODEL}),
    ("responses-claude", "/v1/responses",
     {**RESPONSES, "model": CLAUDE_MODEL, "reasoning": None,
      "text": {"format": {"type": "json_schema", "name": "s", "schema": SCHEMA}}}),
    ("embeddings", "/v1/embeddings",
     {"model": CHAT_MODEL, "input": ["a", "b"], "encoding_format": "float", "user": "u"}),
    ("chat-conversation", "/v1/chat/completions",
     {"model": CHAT_MODEL, "max_completion_tokens": 20, "messages": CONVERSATION,
      "tools": [CHAT_TOOL], "tool_choice": "required", "n": 2, "logit_bias": {"50256": -100},
      "logprobs": True, "top_logprobs": 2, "reasoning_effort": "low", "service_tier": "auto",
      "response_format": {"type": "json_schema",
                          "json_schema": {"name": "s", "strict": True, "schema": SCHEMA}}}),
    ("chat-claude-conversation", "/v1/chat/completions",
     {"model": CLAUDE_MODEL, "max_tokens": 2000, "messages": CONVERSATION, "tools": [CHAT_TOOL],
      "tool_choice": {"type": "function", "function": {"name": "f"}}, "stop": "x", "top_p": 0.9,
      "parallel_tool_calls": False}),
    ("messages-openai-conversation", "/v1/messages", MESSAGES_TO_OPENAI),
    ("messages-openai-deferred", "/v1/messages",  # a deferred tool's name, looked up in a set
     {"model": CHAT_MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}],
      "tools": [{"name": "f", "input_schema": OBJECT},
                {"name": "g", "input_schema": OBJECT, "defer_loading": True}]}),
    ("responses-items", "/v1/responses", RESPONSES_ITEMS),
    ("responses-allowed-tools", "/v1/responses", {**RESPONSES_ITEMS, "tool_choice": ALLOWED_TOOLS}),
    ("embeddings-tokens", "/v1/embeddings",
     {"model": CHAT_MODEL, "input": [[1, 2, 3], [4]], "dimensions": 4,
      "encoding_format": "base64"}),
]  # fmt: skip


def places(value: Any, at: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """The path of every value inside `value` (not `value` itself), depth first."""
    if isinstance(value, dict | list):
        for key, child in value.items() if isinstance(value, dict) else enumerate(value):
            yield (*at, key)
            yield from places(child, (*at, key))


def replaced(value: Any, at: tuple[str | int, ...], new: Any) -> Any:
    """A copy of `value` with the value at path `at` replaced by `new`."""
    if not at:
        return new
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[at[0]] = replaced(value[at[0]], at[1:], new)
    return copy
