"""Codex's remote compaction through the box: a `compaction_trigger` item ends the input, the
answer is one `compaction` item, and the next request hands that item back.

Codex 0.171 compacts this way (its "responses_compaction_v2", an ordinary streamed
`/v1/responses` call) whenever its provider counts as OpenAI's: the built-in `openai` provider
pointed at the box with `openai_base_url`, or a custom provider named "OpenAI". The box
refused the trigger (400 "input items of type 'compaction_trigger' are not supported") and
Codex ended the turn on "Error running remote compact task". A native upstream
(`--responses-api`) now gets both items as sent; a chat or Anthropic model is asked for a
handoff summary, which comes back sealed in the compaction item and goes back to the model as a
user message. Each compaction is one metered call with one usage row.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import usd_nanos
from tests.responses.conftest import NATIVE_MODEL, OPENAI_MODEL, PRICES, ResponsesBox

TRIGGER = {"type": "compaction_trigger"}
HISTORY: list[dict[str, Any]] = [
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Fix it."}]},
    {"type": "function_call", "call_id": "call_1", "name": "exec_command",
     "arguments": json.dumps({"cmd": "ls"})},
    {"type": "function_call_output", "call_id": "call_1", "output": "main.py"},
]  # fmt: skip
TOOLS = [{"type": "function", "name": "exec_command", "description": "Run a command.",
          "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}}]  # fmt: skip


def _post(box: ResponsesBox, key: str, body: dict[str, Any]) -> Any:
    return box.openai(key).post("/responses", cast_to=object, body=body)


def _compaction(output: list[Any]) -> dict[str, Any]:
    (item,) = output
    assert item["type"] == "compaction" and item["id"].startswith("cmp_"), item
    assert isinstance(item["encrypted_content"], str)
    return dict(item)


def test_a_chat_model_compacts_into_a_summary_handed_back(fresh: ResponsesBox) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="Goal: fix it. Seen: main.py.", prompt_tokens=900,
                                 completion_tokens=12),
                           Reply(content="Fixed.", prompt_tokens=200,
                                 completion_tokens=3))  # fmt: skip
    body = {"model": OPENAI_MODEL, "input": [*HISTORY, TRIGGER], "tools": TOOLS,
            "instructions": "You are Codex.", "store": False}  # fmt: skip
    answer = _post(fresh, key, body)
    item = _compaction(answer["output"])
    assert "Goal: fix it." not in item["encrypted_content"]  # sealed (base64)
    sent = fresh.openai_fake.requests[0].body
    assert sent["messages"][-1]["role"] == "user"
    assert "summary" in str(sent["messages"][-1]["content"]).lower()
    assert sent.get("tool_choice") == "none", "the summary must not be a tool call"
    rows = fresh.usage_rows(email)
    assert len(rows) == 1 and rows[0]["route"] == "/v1/responses" and rows[0]["status"] == "ok"
    assert rows[0]["cost_nanos"] == usd_nanos((900, PRICES["in"]), (12, PRICES["out"]))
    user = {"type": "message", "role": "user", "content": "Go on."}
    _post(fresh, key, {"model": OPENAI_MODEL, "input": [HISTORY[0], item, user]})
    after = fresh.openai_fake.requests[1].body["messages"]
    assert [m["role"] for m in after] == ["user", "user", "user"]
    assert "Goal: fix it. Seen: main.py." in str(after[1]["content"])
    _, held = fresh.balance_nanos(email)
    assert held == 0 and len(fresh.usage_rows(email)) == 2


def test_a_streamed_compaction_ends_with_the_compaction_item(fresh: ResponsesBox) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="All that happened.", prompt_tokens=500,
                                 completion_tokens=4))  # fmt: skip
    stream = fresh.openai(key).responses.create(
        model=OPENAI_MODEL, input=[*HISTORY, TRIGGER], tools=TOOLS, stream=True
    )  # type: ignore[list-item]
    seen = [event.model_dump(exclude_unset=True) for event in stream]
    kinds = [e["type"] for e in seen]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-3:] == ["response.output_item.added", "response.output_item.done",
                          "response.completed"]  # fmt: skip
    assert not any(k.startswith("response.output_text") for k in kinds), kinds
    done = seen[-1]["response"]
    assert _compaction(done["output"]) == seen[-2]["item"]
    assert [e["sequence_number"] for e in seen] == list(range(len(seen)))
    assert done["usage"]["cost_usd"]
    assert len(fresh.usage_rows(email)) == 1


def test_a_native_upstream_gets_the_trigger_and_compaction_as_sent(fresh: ResponsesBox) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="ok", prompt_tokens=300, completion_tokens=2))
    native = {"type": "compaction", "id": "cmp_up", "encrypted_content": "gAAAA-openai-blob"}
    _post(fresh, key, {"model": NATIVE_MODEL, "input": [HISTORY[0], native, *HISTORY[1:],
                                                         TRIGGER]})  # fmt: skip
    sent = fresh.openai_fake.requests[0].body
    assert sent["input"][1] == native and sent["input"][-1] == TRIGGER
    rows = fresh.usage_rows(email)
    assert len(rows) == 1 and rows[0]["route"] == "/v1/responses"


def test_the_boxs_own_compaction_reaches_a_native_model_as_its_summary(
    fresh: ResponsesBox,
) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="The story so far."), Reply(content="ok"))
    made = _compaction(_post(fresh, key, {"model": OPENAI_MODEL, "input": [*HISTORY, TRIGGER]})
                       ["output"])  # fmt: skip
    _post(fresh, key, {"model": NATIVE_MODEL, "input": [HISTORY[0], made]})
    given = fresh.openai_fake.requests[1].body["input"][1]
    assert given["role"] == "user" and "The story so far." in json.dumps(given)


def test_another_providers_compaction_is_refused_by_a_chat_model(fresh: ResponsesBox) -> None:
    import openai
    import pytest

    _, key = fresh.new_key()
    foreign = {"type": "compaction", "id": "cmp_up", "encrypted_content": "gAAAA-openai-blob"}
    with pytest.raises(openai.BadRequestError) as refused:
        _post(fresh, key, {"model": OPENAI_MODEL, "input": [HISTORY[0], foreign]})
    error = refused.value.body
    assert isinstance(error, dict) and error["param"] == "input[1]"
    assert "compaction" in error["message"] and not fresh.openai_fake.requests


def test_an_anthropic_model_compacts_without_calling_a_tool(fresh: ResponsesBox) -> None:
    from tests.fakes.anthropic_upstream import Reply as AnthropicReply
    from tests.responses.conftest import ANTHROPIC_MODEL

    email, key = fresh.new_key()
    fresh.fake.script(AnthropicReply(text="Summary: ls showed main.py.", input_tokens=700,
                                     output_tokens=9))  # fmt: skip
    body = {"model": ANTHROPIC_MODEL, "input": [*HISTORY, TRIGGER], "tools": TOOLS}
    item = _compaction(_post(fresh, key, body)["output"])
    sent = fresh.fake.requests[-1].body
    assert sent["tool_choice"] == {"type": "none"}
    assert "Compact this conversation" in json.dumps(sent["messages"][-1])
    assert "Summary: ls showed main.py." not in json.dumps(item)
    rows = fresh.usage_rows(email)
    assert len(rows) == 1 and (rows[0]["input_tokens"], rows[0]["output_tokens"]) == (700, 9)


LONG_HISTORY: list[dict[str, Any]] = [
    *HISTORY,
    {"type": "message", "role": "assistant",
     "content": [{"type": "output_text", "text": "Listed: main.py. " * 40}]},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Now test."}]},
    {"type": "function_call", "call_id": "call_2", "name": "exec_command",
     "arguments": json.dumps({"cmd": "pytest"})},
    {"type": "function_call_output", "call_id": "call_2", "output": "1 passed"},
]  # fmt: skip
TOO_LONG = {"message": "This model's maximum context length is 6000 tokens. However, your "
            "messages resulted in 9000 tokens.", "type": "invalid_request_error",
            "param": "messages", "code": "context_length_exceeded"}  # fmt: skip


def _well_formed(messages: list[dict[str, Any]]) -> None:
    """Instructions, then a user turn; every tool result after the call it answers."""
    turns = [m for m in messages if m["role"] != "system"]
    assert turns[0]["role"] == "user", messages
    called = {c["id"] for m in turns for c in m.get("tool_calls") or ()}
    assert all(m["tool_call_id"] in called for m in turns if m["role"] == "tool"), messages


def test_an_anthropic_model_too_short_for_the_compaction_is_asked_again_shorter(
    fresh: ResponsesBox,
) -> None:
    """Anthropic's "prompt is too long" to the compaction request: asked again (same call) with
    the oldest turns left out, the instructions and the summary request kept; one usage row."""
    from tests.fakes.anthropic_upstream import Reply as AnthropicReply
    from tests.responses.conftest import ANTHROPIC_MODEL

    email, key = fresh.new_key()
    fresh.fake.script(AnthropicReply.error(400, "invalid_request_error",
                                           "prompt is too long: 210000 tokens > 200000 maximum"),
                      AnthropicReply(text="Summary: tests pass.", input_tokens=700,
                                     output_tokens=9))  # fmt: skip
    body = {"model": ANTHROPIC_MODEL, "input": [*LONG_HISTORY, TRIGGER], "tools": TOOLS,
            "instructions": "You are Codex."}  # fmt: skip
    _compaction(_post(fresh, key, body)["output"])
    refused, trimmed = (r.body for r in fresh.fake.requests[-2:])
    assert len(json.dumps(trimmed["messages"])) < len(json.dumps(refused["messages"]))
    assert trimmed["system"] == refused["system"]
    assert trimmed["messages"][-1] == refused["messages"][-1]  # the summary request
    assert "1 passed" in json.dumps(trimmed) and "Fix it." not in json.dumps(trimmed)
    rows = fresh.usage_rows(email)
    assert len(rows) == 1 and (rows[0]["input_tokens"], rows[0]["output_tokens"]) == (700, 9)


def _streamed_compaction(
    fresh: ResponsesBox, key: str, model: str, requests: list[Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Codex's streamed compaction of LONG_HISTORY, answered with a compaction item; the bodies
    of the upstream's last two requests (the one refused, the shorter one answered)."""
    stream = fresh.openai(key).responses.create(
        model=model,
        input=[*LONG_HISTORY, TRIGGER],
        tools=TOOLS,
        stream=True,
        instructions="You are Codex.",
    )  # type: ignore[list-item]
    seen = [event.model_dump(exclude_unset=True) for event in stream]
    assert seen[-1]["type"] == "response.completed", seen[-1]
    _compaction(seen[-1]["response"]["output"])
    refused, trimmed = (r.body for r in requests[-2:])
    return refused, trimmed


def test_a_streamed_compaction_refused_as_too_long_in_its_stream_is_asked_again_shorter(
    fresh: ResponsesBox,
) -> None:
    """Codex streams its compaction. Anthropic documents its refusal of a prompt too long as
    a 400, but an error event after the 200 (before any content) saying the same was
    retried as an overload: the same request to the next key, which a real upstream refuses
    again, until it was relayed as an upstream error and Codex stopped the session. It is now
    asked again with the oldest turns left out, as the 400 is; one usage row."""
    from tests.fakes.anthropic_upstream import Reply as AnthropicReply
    from tests.responses.conftest import ANTHROPIC_MODEL

    email, key = fresh.new_key()
    fresh.fake.script(AnthropicReply(error_before_content=True,
                                     error_type="invalid_request_error",
                                     error_message="prompt is too long: 210000 tokens > "
                                                   "200000 maximum"),
                      AnthropicReply(text="Summary: tests pass.", input_tokens=700,
                                     output_tokens=9))  # fmt: skip
    refused, trimmed = _streamed_compaction(fresh, key, ANTHROPIC_MODEL, fresh.fake.requests)
    assert len(json.dumps(trimmed["messages"])) < len(json.dumps(refused["messages"]))
    assert trimmed["messages"][-1] == refused["messages"][-1]  # the summary request
    rows = fresh.usage_rows(email)
    assert len(rows) == 1 and (rows[0]["input_tokens"], rows[0]["output_tokens"]) == (700, 9)


VLLM_TOO_LONG = {"object": "error", "message": "This model's maximum context length is 4096 "
                 "tokens. However, you requested 9000 tokens.", "type": "BadRequestError",
                 "param": None, "code": 400}  # fmt: skip


@pytest.mark.parametrize("refusal", [{"error": TOO_LONG}, VLLM_TOO_LONG], ids=["openai", "vllm"])
def test_a_streamed_compaction_an_openai_compatible_server_refuses_in_its_stream_is_trimmed(
    fresh: ResponsesBox, refusal: dict[str, Any]
) -> None:
    """OpenAI refuses a request too long with a 400, but a compatible server (a proxy) may
    accept the stream and send the refusal as its first event: Codex got a 502 and stopped.
    The compaction is asked again shorter, as after the 400; one usage row. vLLM's own error
    (type BadRequestError, its words saying so) too."""
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(raw=[f"data: {json.dumps(refusal)}\n\n".encode()]),
                           Reply(content="Summary: tests pass.", prompt_tokens=700,
                                 completion_tokens=9))  # fmt: skip
    refused, trimmed = _streamed_compaction(fresh, key, OPENAI_MODEL, fresh.openai_fake.requests)
    assert len(json.dumps(trimmed["messages"])) < len(json.dumps(refused["messages"]))
    rows = fresh.usage_rows(email)
    assert len(rows) == 1 and (rows[0]["input_tokens"], rows[0]["output_tokens"]) == (700, 9)


LLAMA_TOO_LONG = (
    b'error: {"code":400,"message":"the request exceeds the available context '
    b'size, try increasing it","type":"exceed_context_size_error"}\n\n'
)


def test_a_streamed_compaction_llama_cpp_refuses_in_an_error_line_is_trimmed(
    fresh: ResponsesBox,
) -> None:
    """llama.cpp's server refuses a prompt past its context in the stream, as an `error:` line
    and `data: [DONE]`: asked again shorter as after a 400; one usage row."""
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(raw=[LLAMA_TOO_LONG, b"data: [DONE]\n\n"]),
                           Reply(content="Summary: tests pass.", prompt_tokens=700,
                                 completion_tokens=9))  # fmt: skip
    refused, trimmed = _streamed_compaction(fresh, key, OPENAI_MODEL, fresh.openai_fake.requests)
    assert len(json.dumps(trimmed["messages"])) < len(json.dumps(refused["messages"]))
    rows = fresh.usage_rows(email)
    assert len(rows) == 1 and (rows[0]["input_tokens"], rows[0]["output_tokens"]) == (700, 9)


def test_a_compaction_refused_as_too_long_again_and_again_is_relayed_after_three_tries(
    fresh: ResponsesBox,
) -> None:
    """At most three shorter attempts, each well formed; then the refusal is the answer (and
    nothing is charged). Any other call's context_length_exceeded is relayed at once."""
    import openai

    email, key = fresh.new_key()
    fresh.openai_fake.push(*[Reply(status=400, error=TOO_LONG) for _ in range(5)])
    turns = [item | ({"call_id": f"{item['call_id']}_{n}"} if "call_id" in item else {})
             for n in range(10) for item in LONG_HISTORY]  # fmt: skip
    body = {"model": OPENAI_MODEL, "input": [*turns, TRIGGER], "tools": TOOLS,
            "instructions": "You are Codex.", "store": False}  # fmt: skip
    with pytest.raises(openai.BadRequestError) as refused:
        _post(fresh, key, body)
    assert refused.value.code == "context_length_exceeded"
    sent = [r.body["messages"] for r in fresh.openai_fake.requests]
    assert len(sent) == 4
    sizes = [len(json.dumps(m)) for m in sent]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 4
    for messages in sent:
        _well_formed(messages)
        assert messages[0] == sent[0][0] and messages[-1] == sent[0][-1]
    with pytest.raises(openai.BadRequestError):
        _post(fresh, key, {**body, "input": turns})
    assert len(fresh.openai_fake.requests) == 5
    assert all(r["cost_nanos"] == 0 for r in fresh.usage_rows(email))


def test_a_trimmed_compaction_without_usage_is_charged_for_what_was_sent(
    fresh: ResponsesBox,
) -> None:
    """A compaction asked again shorter, answered without usage: it was charged the estimate
    of the whole request the upstream refused (and never billed), not of the shorter one it
    answered. The estimate is of the request sent, never low for it."""
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(status=400, error=TOO_LONG),
                           Reply(content="Summary: tests pass.", usage=False))  # fmt: skip
    turns = [item | ({"call_id": f"{item['call_id']}_{n}"} if "call_id" in item else {})
             for n in range(10) for item in LONG_HISTORY]  # fmt: skip
    body = {"model": OPENAI_MODEL, "input": [*turns, TRIGGER], "tools": TOOLS,
            "instructions": "You are Codex.", "store": False}  # fmt: skip
    _compaction(_post(fresh, key, body)["output"])
    refused, sent = (r.body for r in fresh.openai_fake.requests[-2:])
    (row,) = fresh.usage_rows(email)
    assert row["estimated"]
    whole, trimmed = (len(json.dumps(b, separators=(",", ":")).encode()) // 4
                      for b in (refused, sent))  # fmt: skip
    assert trimmed * 0.95 <= row["input_tokens"] < (whole + trimmed) // 2, (whole, trimmed)


def test_a_compactions_tool_choice_is_checked_as_any_other(fresh: ResponsesBox) -> None:
    """A trigger made the translation skip the check of `tool_choice` (a compaction's is
    `none` for a translated model), and a native upstream gets the body as sent: a hosted
    tool named there (web search, billed per use, refused without the trigger) or a tool that
    is not in `tools` went up. Now a 400 as without the trigger, and nothing is sent."""
    import openai
    import pytest

    _, key = fresh.new_key()
    for choice, param in (({"type": "web_search_preview"}, "tool_choice"),
                          ({"type": "function", "name": "nope"}, "tool_choice"),
                          (5, "tool_choice")):  # fmt: skip
        for model in (NATIVE_MODEL, OPENAI_MODEL):
            body = {"model": model, "input": [*HISTORY, TRIGGER], "tools": TOOLS,
                    "tool_choice": choice}  # fmt: skip
            with pytest.raises(openai.BadRequestError) as refused:
                _post(fresh, key, body)
            error = refused.value.body
            assert isinstance(error, dict) and error["param"] == param, error
    assert not fresh.openai_fake.requests
