"""Responses request bodies: what is refused (400 naming the field), and the chat body the rest
becomes, including a request exactly as Codex CLI sends it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from codelace_box.errors import InvalidRequest
from codelace_box.gateway.request import validate_body
from codelace_box.providers.responses_request import IGNORED_FIELDS, translate_request

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
        # without tools, a value no request takes is told so (it was "names a tool")
        ({"tool_choice": "sometimes"}, "tool_choice", "must be auto, none, required"),
        ({"tool_choice": {"type": "function", "name": "g"}}, "tool_choice", "'g'"),
        # tools of only hosted ones the box drops (Codex's web_search): not "tools is empty"
        (
            {"tools": [{"type": "web_search"}], "tool_choice": "required"},
            "tool_choice",
            "tools has no tool the box offers a model (web_search is dropped",
        ),
        (
            {
                "tools": [{"type": "web_search"}, {"type": "tool_search"}],
                "tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []},
            },
            "tool_choice",
            "(web_search, tool_search are dropped",
        ),
        ({"reasoning": {"effort": "extreme"}}, "reasoning.effort", "must be one of"),
        ({"reasoning": {"budget": 10}}, "reasoning.budget", ""),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema", ""),
        ({"text": {"format": {"type": "grammar"}}}, "text.format.type", ""),
        ({"max_output_tokens": 0}, "max_output_tokens", "positive"),
        # 1 and 0 are numbers, not booleans (OpenAI refuses them): 1 was streamed, 0 was not
        ({"stream": 1}, "stream", "boolean"),
        ({"stream": 0}, "stream", "boolean"),
        ({"stream": 1.0}, "stream", "boolean"),
        ({"model": ""}, "model", "required"),
        ({"model": "   "}, "model", "required"),  # blank: refused here, as on every route
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
            "input[0].content[0].file_id",
            "file_id",
        ),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id", ""),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role", ""),
        ({"max_output_tokens": 2**31}, "max_output_tokens", "at most"),  # not chat's name
        # Claude's extra samplings (a compaction pass, advisor calls) never reach a front of
        # Claude by this route, translated or native (gateway/responses.py translates both),
        # so the hold of chat's path needs none for them here (gateway/extra_samplings.py)
        (
            {"context_management": {"edits": [{"type": "compact_20260112"}]}},
            "context_management",
            "not supported",
        ),
        ({"tools": [{"type": "advisor_20260301", "name": "advisor"}]}, "tools[0].type", ""),
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
    ["include", "store", "metadata", "client_metadata", "stream_options"],
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
        "prompt_cache_key": "thread-1",
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
        "prompt_cache_key": "thread-1",
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


@pytest.mark.parametrize(
    ("name", "value"), [("file_id", "file-6F2ksmvXxt4VdoqmHRw6kL"), ("file_url", "https://a.b/c")]
)
def test_a_file_by_reference_is_one_refusal_on_chat_and_responses(name: str, value: str) -> None:
    """Chat's `file` part and the Responses API's `input_file` name a stored file (or one the
    provider fetches) alike: refused alike, in one wording, only the path differing."""
    chat_part = {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE",
                                          name: value}}  # fmt: skip
    with pytest.raises(InvalidRequest) as chat:
        validate_body({"model": "m", "messages": [{"role": "user", "content": [chat_part]}]})
    responses_part = {"type": "input_file", "file_data": "JVBE", name: value}
    with pytest.raises(InvalidRequest) as responses:
        translate_request(BASE | {"input": [{"role": "user", "content": [responses_part]}]})
    assert chat.value.param == f"messages[0].content[0].file.{name}"
    assert responses.value.param == f"input[0].content[0].{name}"
    said = (chat.value.message.removeprefix(chat.value.param),
            responses.value.message.removeprefix(responses.value.param))  # fmt: skip
    assert said[0] == said[1], said
    assert (chat.value.status, chat.value.code) == (responses.value.status, responses.value.code)


def test_a_custom_tool_call_handed_back_keeps_its_text_as_the_model_wrote_it() -> None:
    """Codex's apply_patch call handed back to a chat model: the patch in UTF-8, as written;
    escaped, each CJK character was six of ASCII (about four times the input tokens, every
    later turn)."""
    patch = "*** Begin Patch\n+你好世界 😀\n*** End Patch"
    call = {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": patch}
    done = {"type": "custom_tool_call_output", "call_id": "c1", "output": "ok"}
    tool = {"type": "custom", "name": "apply_patch"}
    body = {"model": "oai/m", "input": [call, done], "tools": [tool]}
    [sent, _] = translate_request(body).body["messages"]
    arguments = sent["tool_calls"][0]["function"]["arguments"]
    assert json.loads(arguments) == {"input": patch} and "你好世界 😀" in arguments


def test_additional_tools_items_are_offered_to_a_translated_model() -> None:
    """Codex's code mode: the tools of `additional_tools` items join `tools` (the `functions`
    namespace's by their own names, a later declaration of a name replacing the earlier), the
    item itself is no message, and a call handed back in that namespace names the same tool."""
    wait = {"type": "function", "name": "wait", "parameters": {"type": "object"}}
    first = {"type": "namespace", "name": "functions", "tools": [
        {"type": "custom", "name": "exec", "description": "Run JavaScript."}, wait]}  # fmt: skip
    later = {"type": "namespace", "name": "functions",
             "tools": [wait | {"description": "Wait for a cell."}]}  # fmt: skip
    call = {"type": "custom_tool_call", "call_id": "c1", "namespace": "functions", "name": "exec",
            "input": "text(1)"}  # fmt: skip
    body = BASE | {
        "input": [{"type": "additional_tools", "role": "developer", "tools": [first]},
                  {"role": "user", "content": "Hi"}, call,
                  {"type": "custom_tool_call_output", "call_id": "c1", "output": "1"},
                  {"type": "additional_tools", "role": "developer", "tools": [later]}],
        "reasoning": {"effort": "low", "context": "all_turns"},
    }  # fmt: skip
    chat = translate_request(body).body
    functions = [t["function"] for t in chat["tools"]]
    assert [f["name"] for f in functions] == ["exec", "wait"]
    assert functions[1]["description"] == "Wait for a cell."
    assert [m["role"] for m in chat["messages"]] == ["user", "assistant", "tool"]
    assert chat["messages"][1]["tool_calls"][0]["function"]["name"] == "exec"
    assert chat["reasoning_effort"] == "low"


def test_a_tool_declared_again_has_its_calls_named_as_its_last_declaration() -> None:
    """A name `tools` and an `additional_tools` item both declare (Codex's code mode: the
    `functions` namespace's tools go by their own names) is offered as its last declaration,
    and the model's call to it comes back as that tool: a function outside any namespace when
    the last one is, arguments as written; a custom tool in `functions` when the last one is."""
    from codelace_box.providers.responses_response import call_item

    js = {"type": "custom", "name": "exec", "description": "Run JavaScript."}
    fn = {"type": "function", "name": "exec", "parameters": {"type": "object"}}
    in_functions = {"type": "namespace", "name": "functions", "tools": [js]}
    as_function = {"type": "function_call", "name": "exec", "arguments": '{"a":1}'}
    as_custom = {"type": "custom_tool_call", "namespace": "functions", "name": "exec",
                 "input": '{"a":1}'}  # fmt: skip
    for first, last, shape in ((in_functions, fn, as_function), (fn, in_functions, as_custom)):
        items = [{"type": "additional_tools", "tools": [tool]} for tool in (first, last)]
        request = translate_request(BASE | {"input": [*items, {"role": "user", "content": "Hi"}]})
        [offered] = request.body["tools"]
        assert ("input" in json.dumps(offered)) == (last is in_functions)
        call = call_item("fc_1", "c1", "exec", '{"a":1}', request.context, "completed")
        assert {k: call.get(k) for k in shape} == shape
        assert ("namespace" in call) == (last is in_functions)
