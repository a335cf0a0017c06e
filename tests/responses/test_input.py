"""Responses `input` items -> chat messages: a request exactly as Codex CLI sends it, parallel
calls, tool outputs with images, handed-back thinking and namespace (MCP) tools."""

from __future__ import annotations

import base64
import json

import pytest

from codelace_box.errors import InvalidRequest
from codelace_box.providers.responses_input import decode_thinking, encode_thinking
from codelace_box.providers.responses_request import translate_request
from codelace_box.providers.responses_response import output_items
from tests.responses.test_request import BASE
from tests.responses.wire import load_json


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
        "prompt_cache_key",  # Codex's thread id, for the upstream's cache routing
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


def test_text_after_a_call_joins_the_calls_message() -> None:
    """A streamed answer can end with text after its calls ([message, function_call, message]:
    responses_stream opens a new message item for it); handed back, that text stays in the
    message that holds the calls, which chat requires to be followed by the calls' results."""
    items = [
        {"type": "message", "role": "user", "content": "Weather?"},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "Checking. "}]},
        {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "One moment."}]},
        {"type": "function_call_output", "call_id": "c1", "output": "18C"},
    ]  # fmt: skip
    messages = translate_request(BASE | {"input": items}).body["messages"]
    call = {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
    assert messages == [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": "Checking. One moment.", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": "18C"},
    ]


def test_handed_back_thinking_kept_only_for_anthropic() -> None:
    blocks = [{"type": "thinking", "thinking": "Let me think.", "signature": "EqQBCkYIBxgC"}]
    items = [
        {"role": "user", "content": "Hi"},
        {"type": "reasoning", "summary": [], "encrypted_content": encode_thinking(blocks, "a/m")},
        {"type": "function_call", "call_id": "toolu_1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "toolu_1", "output": "ok"},
    ]
    kept = translate_request(BASE | {"input": items}, keep_thinking=True, model="a/m")
    assert kept.body["messages"][1]["thinking_blocks"] == blocks
    other = translate_request(BASE | {"input": items}, keep_thinking=True, model="a/other")
    assert "thinking_blocks" not in other.body["messages"][1]  # signed for another model
    dropped = translate_request(BASE | {"input": items}).body["messages"]
    assert "thinking_blocks" not in dropped[1]
    assert decode_thinking("gAAAAABo-openai-encrypted", "a/m") == []
    assert decode_thinking(encode_thinking(blocks, "a/m"), "a/m") == blocks
    assert decode_thinking(encode_thinking(blocks, "a/m"), "a/other") == []
    raw = base64.urlsafe_b64encode(json.dumps(blocks).encode()).decode()
    legacy = "codelace-thinking-v1:" + raw
    assert decode_thinking(legacy, "a/m") == blocks  # from before the model tag: taken


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
