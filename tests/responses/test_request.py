"""Responses request bodies: what is refused (400 naming the field), and the chat body the rest
becomes, including a request exactly as Codex CLI sends it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from codelace_box.errors import InvalidRequest
from codelace_box.providers.responses_input import decode_thinking, encode_thinking
from codelace_box.providers.responses_request import IGNORED_FIELDS, translate_request
from tests.responses.wire import load_json

BASE: dict[str, Any] = {"model": "box/test-model", "input": "Hello"}


@pytest.mark.parametrize(
    ("extra", "param", "words"),
    [
        ({"previous_response_id": "resp_123"}, "previous_response_id", "stateless"),
        ({"conversation": "conv_1"}, "conversation", "stateless"),
        ({"background": True}, "background", "background"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt", "prompt"),
        ({"max_tool_calls": 3}, "max_tool_calls", "hosted tools"),
        ({"truncation": "auto"}, "truncation", "never drops input"),
        ({"frequency_penalty": 1}, "frequency_penalty", "not supported"),
        ({"tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}, "tools[0].type", ""),
        ({"tools": [{"type": "web_search_preview"}]}, "tools[0].type", "hosted"),
        (
            {"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]},
            "tools[0].type",
            "",
        ),
        ({"tools": [{"type": "computer_use_preview"}]}, "tools[0].type", ""),
        ({"tools": [{"type": "image_generation"}]}, "tools[0].type", ""),
        ({"tools": [{"type": "local_shell"}]}, "tools[0].type", ""),
        ({"tools": [{"type": "mcp", "server_label": "x"}]}, "tools[0].type", ""),
        ({"tools": [{"type": "function"}]}, "tools[0].name", "required"),
        (
            {"tool_choice": {"type": "file_search"}, "tools": [{"type": "function", "name": "f"}]},
            "tool_choice",
            "",
        ),
        (
            {
                "tool_choice": {"type": "function", "name": "g"},
                "tools": [{"type": "function", "name": "f"}],
            },
            "tool_choice",
            "'g'",
        ),
        ({"tool_choice": "required"}, "tool_choice", "tools is empty"),
        ({"reasoning": {"effort": "extreme"}}, "reasoning.effort", "must be one of"),
        ({"reasoning": {"budget": 10}}, "reasoning.budget", ""),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema", ""),
        ({"text": {"format": {"type": "grammar"}}}, "text.format.type", ""),
        ({"max_output_tokens": 0}, "max_output_tokens", "positive"),
        ({"model": ""}, "model", "required"),
        ({"input": None}, "input", "required"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type", "stateless"),
        (
            {"input": [{"type": "web_search_call", "id": "ws_1", "status": "completed"}]},
            "input[0].type",
            "",
        ),
        (
            {
                "input": [
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_image", "file_id": "file-1"}],
                    }
                ]
            },
            "input[0].content[0]",
            "file_id",
        ),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id", ""),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role", ""),
    ],
)
def test_unsupported_is_a_400_naming_the_field(
    extra: dict[str, Any], param: str, words: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        translate_request(BASE | extra)
    assert caught.value.status == 400
    assert caught.value.param == param
    assert words in caught.value.message
    assert caught.value.envelope()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "name",
    ["include", "store", "prompt_cache_key", "metadata", "client_metadata", "stream_options"],
)
def test_ignored_fields_change_nothing(name: str) -> None:
    assert name in IGNORED_FIELDS
    value: Any = {
        "include": ["reasoning.encrypted_content"],
        "store": True,
        "metadata": {"a": "b"},
        "client_metadata": {"session_id": "s"},
        "stream_options": {},
    }.get(name, "k")
    assert translate_request(BASE | {name: value}).body == translate_request(BASE).body


def test_string_input_and_options() -> None:
    body = BASE | {
        "instructions": "Be brief.",
        "max_output_tokens": 300,
        "temperature": 0.2,
        "top_p": 0.9,
        "reasoning": {"effort": "high", "summary": "auto"},
        "text": {
            "format": {
                "type": "json_schema",
                "name": "answer",
                "strict": True,
                "schema": {
                    "type": "object",
                    "properties": {"a": {"type": "string"}},
                    "required": ["a"],
                    "additionalProperties": False,
                },
            },
            "verbosity": "low",
        },
        "stream": True,
        "user": "u-1",
        "safety_identifier": "hashed-1",
        "truncation": "disabled",
    }
    chat = translate_request(body).body
    assert chat == {
        "model": "box/test-model",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello"},
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "user": "u-1",
        "safety_identifier": "hashed-1",
        "max_completion_tokens": 300,
        "reasoning_effort": "high",
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "answer",
                "schema": body["text"]["format"]["schema"],
                "strict": True,
            },
        },
        "stream": True,
    }


def test_message_parts_tools_and_choice() -> None:
    image = "data:image/png;base64,iVBORw0KGgo="
    body = BASE | {
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": image, "detail": "high"},
                    {
                        "type": "input_file",
                        "filename": "a.pdf",
                        "file_data": "data:application/pdf;base64,JVBERi0=",
                    },
                ],
            },
        ],
        "tools": [
            {
                "type": "function",
                "name": "lookup",
                "description": "Look up.",
                "strict": True,
                "parameters": {
                    "type": "object",
                    "properties": {"q": {"type": "string"}},
                    "required": ["q"],
                    "additionalProperties": False,
                },
            }
        ],
        "tool_choice": {"type": "function", "name": "lookup"},
        "parallel_tool_calls": False,
    }
    chat = translate_request(body).body
    assert chat["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": image, "detail": "high"}},
                {
                    "type": "file",
                    "file": {
                        "file_data": "data:application/pdf;base64,JVBERi0=",
                        "filename": "a.pdf",
                    },
                },
            ],
        }
    ]
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "Look up.",
                "parameters": body["tools"][0]["parameters"],
                "strict": True,
            },
        }
    ]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "lookup"}}
    assert chat["parallel_tool_calls"] is False


def test_codex_request_translates_cleanly() -> None:
    """A request as Codex CLI sends it (codex-rs ResponsesApiRequest, second turn)."""
    codex = load_json("codex_request.json")
    translated = translate_request(codex)
    chat = translated.body
    assert chat["model"] == "gpt-5.1-codex" and chat["stream"] is True
    assert chat["reasoning_effort"] == "medium"
    assert chat["tool_choice"] == "auto" and chat["parallel_tool_calls"] is False
    assert set(chat) == {
        "model",
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning_effort",
        "stream",
    }
    roles = [m["role"] for m in chat["messages"]]
    assert roles == [
        "system",
        "system",
        "user",
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "assistant",
        "user",
    ]
    assert chat["messages"][0]["content"].startswith("You are Codex")
    assert chat["messages"][1]["content"].startswith("<permissions instructions>")
    patch_call = chat["messages"][4]
    assert patch_call["content"] is None
    assert patch_call["tool_calls"] == [
        {
            "id": "call_apply_01",
            "type": "function",
            "function": {
                "name": "apply_patch",
                "arguments": json.dumps({"input": codex["input"][4]["input"]}),
            },
        }
    ]
    assert "thinking_blocks" not in patch_call  # OpenAI's encrypted reasoning: dropped
    assert chat["messages"][5] == {
        "role": "tool",
        "tool_call_id": "call_apply_01",
        "content": codex["input"][5]["output"],
    }
    assert chat["messages"][6]["tool_calls"][0]["function"] == {
        "name": "shell",
        "arguments": codex["input"][6]["arguments"],
    }
    assert chat["messages"][8] == {
        "role": "assistant",
        "content": "Created hello.txt; the folder now holds hello.txt.",
    }
    names = [t["function"]["name"] for t in chat["tools"]]
    assert names == ["shell", "update_plan", "apply_patch", "view_image"]  # web_search dropped
    patch_tool = chat["tools"][2]["function"]
    assert patch_tool["parameters"]["required"] == ["input"]
    assert (
        "lark grammar" in patch_tool["description"]
        and "*** Begin Patch" in patch_tool["description"]
    )
    assert chat["tools"][0]["function"]["strict"] is False
    context = translated.context
    assert context.custom_tools == {"apply_patch"}
    assert context.encrypted_reasoning is True
    assert [t["type"] for t in context.echo["tools"]] == [
        "function",
        "function",
        "custom",
        "function",
    ]


def test_parallel_calls_share_one_assistant_message() -> None:
    items = [
        {"type": "message", "role": "user", "content": "Weather in Paris and Bogotá?"},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Checking."}],
        },
        {"type": "function_call", "call_id": "c1", "name": "w", "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "c2", "name": "w", "arguments": '{"city":"Bogotá"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "18C"},
        {
            "type": "function_call_output",
            "call_id": "c2",
            "output": [
                {"type": "input_text", "text": "24C"},
                {"type": "input_image", "image_url": "https://example.com/map.png"},
            ],
        },
        {"type": "message", "role": "user", "content": "Thanks"},
    ]
    messages = translate_request(BASE | {"input": items}).body["messages"]
    assert messages == [
        {"role": "user", "content": "Weather in Paris and Bogotá?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "w", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "w", "arguments": '{"city":"Bogotá"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "18C"},
        {"role": "tool", "tool_call_id": "c2", "content": "24C"},
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "https://example.com/map.png"}}],
        },
        {"role": "user", "content": "Thanks"},
    ]


def test_handed_back_thinking_kept_only_for_anthropic() -> None:
    blocks = [{"type": "thinking", "thinking": "Let me think.", "signature": "EqQBCkYIBxgC"}]
    items = [
        {"role": "user", "content": "Hi"},
        {"type": "reasoning", "summary": [], "encrypted_content": encode_thinking(blocks)},
        {"type": "function_call", "call_id": "toolu_1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "toolu_1", "output": "ok"},
    ]
    kept = translate_request(BASE | {"input": items}, keep_thinking=True).body["messages"]
    assert kept[1]["thinking_blocks"] == blocks
    dropped = translate_request(BASE | {"input": items}).body["messages"]
    assert "thinking_blocks" not in dropped[1]
    assert decode_thinking("gAAAAABo-openai-encrypted") == []
    assert decode_thinking(encode_thinking(blocks)) == blocks


def test_failed_call_output_object_and_trailing_images() -> None:
    items = [
        {"role": "user", "content": "Look at the chart"},
        {
            "type": "function_call",
            "call_id": "c1",
            "name": "view_image",
            "arguments": '{"path":"a.png"}',
        },
        {
            "type": "function_call_output",
            "call_id": "c1",
            "output": {"content": "no such file", "success": False},
        },
        {
            "type": "function_call",
            "call_id": "c2",
            "name": "view_image",
            "arguments": '{"path":"b.png"}',
        },
        {
            "type": "function_call_output",
            "call_id": "c2",
            "output": [{"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}],
        },
    ]
    messages = translate_request(BASE | {"input": items}).body["messages"]
    assert [m["role"] for m in messages] == [
        "user",
        "assistant",
        "tool",
        "assistant",
        "tool",
        "user",
    ]
    assert messages[2]["content"] == "no such file"
    assert messages[4]["content"] == ""
    assert messages[5]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    ]


def test_namespace_tools_flatten_and_come_back_named() -> None:
    """Codex sends MCP tools as a namespace; their calls carry `namespace` and the tool's name."""
    from codelace_box.providers.responses_response import output_items

    lookup = {
        "type": "function",
        "name": "lookup",
        "description": "Find docs.",
        "strict": False,
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    }
    body = BASE | {
        "tools": [
            {
                "type": "namespace",
                "name": "mcp__docs__",
                "description": "Docs tools.",
                "tools": [lookup],
            }
        ],
        "input": [
            {"role": "user", "content": "Find the install guide"},
            {
                "type": "function_call",
                "namespace": "mcp__docs__",
                "name": "lookup",
                "arguments": '{"q":"install"}',
                "call_id": "call_9",
            },
            {"type": "function_call_output", "call_id": "call_9", "output": "See INSTALL.md"},
        ],
    }
    translated = translate_request(body)
    assert [t["function"]["name"] for t in translated.body["tools"]] == ["mcp__docs__lookup"]
    assert (
        translated.body["messages"][1]["tool_calls"][0]["function"]["name"] == "mcp__docs__lookup"
    )
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_10",
                "type": "function",
                "function": {"name": "mcp__docs__lookup", "arguments": '{"q":"config"}'},
            }
        ],
    }
    (item,) = output_items(message, translated.context)
    assert (item["type"], item["namespace"], item["name"]) == (
        "function_call",
        "mcp__docs__",
        "lookup",
    )
    with pytest.raises(InvalidRequest) as caught:
        translate_request(
            BASE
            | {"tools": [{"type": "namespace", "name": "n", "tools": [{"type": "web_search"}]}]}
        )
    assert caught.value.param == "tools[0].tools[0].type"
