"""Chat completions -> Responses `response` objects (the non-streamed answer) and usage."""

from __future__ import annotations

from openai.types.responses import Response

from codelace_box.providers import adapter_for
from codelace_box.providers.base import Usage
from codelace_box.providers.responses_request import translate_request
from codelace_box.providers.responses_response import responses_usage, translate_completion
from tests.responses.wire import MODEL, load_json

WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}


def test_text_and_two_tool_calls() -> None:
    request = {"model": MODEL, "input": "Paris and Bogotá?", "tools": [WEATHER], "temperature": 0.5}
    context = translate_request(request).context
    completion, usage = adapter_for("openai").parse_response(
        load_json("chat_completion_tools.json"), MODEL
    )
    body = translate_completion(completion, usage, context, usage_extra={"cost_usd": "0.0042"})
    assert body["object"] == "response" and body["id"].startswith("resp_")
    assert body["status"] == "completed" and body["model"] == MODEL
    assert body["created_at"] == 1745856440
    assert body["temperature"] == 0.5 and body["tools"] == [WEATHER]
    assert body["store"] is False and body["previous_response_id"] is None
    message, first, second = body["output"]
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["content"] == [
        {
            "type": "output_text",
            "text": "I'll check both cities.",
            "annotations": [],
            "logprobs": [],
        }
    ]
    assert first == {
        "id": first["id"],
        "type": "function_call",
        "status": "completed",
        "call_id": "call_Wq3sUgbMoTdJ6dJm8jEnxXQd",
        "name": "get_weather",
        "arguments": '{"location":"Paris, France"}',
    }
    assert first["id"].startswith("fc_") and second["call_id"] == "call_kQx7bW1t0rHhUe4nLsB9aFzG"
    assert body["usage"] == {
        "input_tokens": 84,
        "input_tokens_details": {"cached_tokens": 64, "cache_write_tokens": 0},
        "output_tokens": 52,
        "output_tokens_details": {"reasoning_tokens": 12},
        "total_tokens": 136,
        "cost_usd": "0.0042",
    }
    parsed = Response.model_validate(body)  # the SDK's own model of the documented shape
    assert parsed.output_text == "I'll check both cities."


def test_length_stop_is_incomplete() -> None:
    context = translate_request({"model": MODEL, "input": "Tell a story"}).context
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Once"},
                "finish_reason": "length",
            }
        ],
    }
    body = translate_completion(completion, Usage(3, 1), context)
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    Response.model_validate(body)


def test_usage_details_default_to_zero() -> None:
    assert responses_usage(Usage(7, 3)) == {
        "input_tokens": 7,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 10,
    }


def test_a_custom_call_without_arguments_has_an_empty_input_as_its_stream_gives_it() -> None:
    """A freeform tool's input is raw text: no arguments are an empty input, not `{}` (the
    `{}` a function call without arguments gets), streamed or not."""
    patch = {"type": "custom", "name": "apply_patch", "description": "Edit files."}
    context = translate_request({"model": MODEL, "input": "Go", "tools": [patch]}).context
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "apply_patch", "arguments": ""},
    }
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    choice = {"index": 0, "message": message, "finish_reason": "tool_calls"}
    completion = {"model": MODEL, "created": 1, "choices": [choice]}
    body = translate_completion(completion, Usage(input_tokens=3, output_tokens=1), context)
    (item,) = body["output"]
    assert item["type"] == "custom_tool_call" and item["input"] == ""
