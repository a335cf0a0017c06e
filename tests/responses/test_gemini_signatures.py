"""Gemini 3 behind an `openai` provider, through the Responses API: each function call carries
a thought signature (`extra_content.google.thought_signature`) that must come back with the
call on the next turn, or Gemini refuses it (400 "Function call is missing a
thought_signature"). It rides in the function_call's `call_id`, which Codex and the SDKs hand
back verbatim with the call and its output, as the Messages API carries it in the tool_use id."""

from __future__ import annotations

import json
from typing import Any

import pytest

from codelace_box.providers.base import UpstreamTarget
from codelace_box.providers.openai import OpenAIAdapter
from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import openai_chunk
from tests.responses.conftest import NATIVE_MODEL, OPENAI_MODEL, ResponsesBox

JSON = dict[str, Any]
SIGNATURE = "CiQBjz1rX+base64/signature==" * 4  # opaque to the box: any characters
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
TOOLS: list[Any] = [{"type": "function", "name": "Read", "parameters": {"type": "object"}}]
ASK = {"role": "user", "content": "read a"}


def _call() -> JSON:
    return {"id": "fc-1", "type": "function", "index": 0,
            "function": {"name": "Read", "arguments": '{"path": "a"}'},
            "extra_content": {"google": {"thought_signature": SIGNATURE}}}  # fmt: skip


def _gemini(streamed: bool) -> Reply:
    if streamed:
        return Reply(raw=[
            openai_chunk({"role": "assistant", "tool_calls": [_call()]}),
            openai_chunk({}, "tool_calls"), openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n",
        ])  # fmt: skip
    message = {"role": "assistant", "content": None, "tool_calls": [_call()]}
    completion = {"id": "c1", "object": "chat.completion", "created": 1, "model": "g",
                  "choices": [{"index": 0, "finish_reason": "tool_calls", "message": message}],
                  "usage": USAGE}  # fmt: skip
    return Reply(raw=[json.dumps(completion).encode()], content_type="application/json")


@pytest.mark.parametrize("streamed", [False, True])
def test_a_signed_call_comes_back_with_its_signature(fresh: ResponsesBox, streamed: bool) -> None:
    _, key = fresh.new_key()
    client = fresh.openai(key)
    fresh.openai_fake.push(_gemini(streamed))
    if streamed:
        with client.responses.stream(model=OPENAI_MODEL, input=[ASK], tools=TOOLS) as stream:
            first = stream.get_final_response()
    else:
        first = client.responses.create(model=OPENAI_MODEL, input=[ASK], tools=TOOLS)
    [call] = [item for item in first.output if item.type == "function_call"]
    assert json.loads(call.arguments) == {"path": "a"}
    fresh.openai_fake.push(Reply(content="done"))
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "a's text"}
    handed = {k: v for k, v in call.model_dump().items() if v is not None}
    client.responses.create(model=OPENAI_MODEL, input=[ASK, handed, output], tools=TOOLS)
    messages = fresh.openai_fake.requests[-1].body["messages"]
    [turn] = [m for m in messages if m["role"] == "assistant"]
    [tool] = [m for m in messages if m["role"] == "tool"]
    sent = turn["tool_calls"][0]
    assert sent["id"] == "fc-1" and tool["tool_call_id"] == "fc-1"
    assert sent["extra_content"] == {"google": {"thought_signature": SIGNATURE}}


def test_openai_itself_gets_no_signature() -> None:
    """A thread begun on Gemini and carried on with an OpenAI model: OpenAI's own API gets the
    calls without Gemini's `extra_content`; other servers get them as handed back."""
    call = _call() | {"index": None}
    body = {"model": "m", "messages": [ASK, {"role": "assistant", "tool_calls": [call]}]}
    for base, kept in (("https://api.openai.com/v1", False), ("http://127.0.0.1:9/v1", True)):
        target = UpstreamTarget("gpt-5.4", "sk-test", base, False, None)
        sent = OpenAIAdapter().build_request(body, target).json_body["messages"][1]["tool_calls"][0]
        assert ("extra_content" in sent) is kept, base
    assert "extra_content" in body["messages"][1]["tool_calls"][0]  # the client's body untouched


def test_a_native_model_gets_the_calls_without_their_signatures(fresh: ResponsesBox) -> None:
    """A Codex thread begun on Gemini and carried on with a `--responses-api` model (`/model`):
    the signature is the box's own rider on the call_id, and OpenAI's Responses API refuses a
    call_id over 64 characters (400 string_above_max_length) on every later turn of the thread.
    The native upstream gets each call and its output under the call's own id."""
    _, key = fresh.new_key()
    client = fresh.openai(key)
    fresh.openai_fake.push(_gemini(streamed=True))
    with client.responses.stream(model=OPENAI_MODEL, input=[ASK], tools=TOOLS) as stream:
        [call] = [item for item in stream.get_final_response().output
                  if item.type == "function_call"]  # fmt: skip
    assert len(call.call_id) > 64  # Gemini's signatures run to hundreds of characters
    fresh.openai_fake.push(Reply(content="done"))
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "a's text"}
    handed = {k: v for k, v in call.model_dump().items() if v is not None}
    client.responses.create(model=NATIVE_MODEL, input=[ASK, handed, output], tools=TOOLS)
    sent = fresh.openai_fake.requests[-1]
    assert sent.path == "/v1/responses"
    ids = [item["call_id"] for item in sent.body["input"] if "call_id" in item]
    assert ids == ["fc-1", "fc-1"]
