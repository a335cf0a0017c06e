"""A native Responses upstream: failing mid-stream, the client gets `response.failed` with the
upstream's error code, as OpenAI sends it; the box's own reasoning items never reach it. Codex
acts on `response.failed` alone (it ignores `error` events): `context_length_exceeded` and
`insufficient_quota` stop it, a rate limit makes it wait; any other end of the stream makes it
retry the doomed request."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.anthropic_upstream import Reply as AnthropicReply
from tests.fakes.openai_upstream import Reply
from tests.responses.conftest import ANTHROPIC_MODEL, NATIVE_MODEL, ResponsesBox

TOO_LONG = "Your input exceeds the context window of this model."


def upstream_frames(tail: list[dict[str, Any]]) -> list[bytes]:
    """An upstream stream that started a message, sent one delta, then `tail`."""
    response = {"id": "resp_up1", "object": "response", "created_at": 1, "status": "in_progress",
                "model": "gpt-5.4", "output": [], "usage": None, "error": None,
                "incomplete_details": None, "tools": [], "tool_choice": "auto",
                "parallel_tool_calls": True}  # fmt: skip
    message = {"id": "msg_up1", "type": "message", "status": "in_progress", "role": "assistant",
               "content": []}  # fmt: skip
    at = {"item_id": "msg_up1", "output_index": 0, "content_index": 0}
    events = [
        {"type": "response.created", "response": response},
        {"type": "response.in_progress", "response": response},
        {"type": "response.output_item.added", "output_index": 0, "item": message},
        {"type": "response.content_part.added", **at,
         "part": {"type": "output_text", "text": "", "annotations": []}},
        {"type": "response.output_text.delta", **at, "delta": "Hel"},
        *[event | {"response": response | event["response"]} for event in tail],
    ]  # fmt: skip
    return [
        f"event: {e['type']}\ndata: {json.dumps(e | {'sequence_number': n})}\n\n".encode()
        for n, e in enumerate(events)
    ]


def test_an_upstream_response_failed_reaches_the_client_as_response_failed(
    fresh: ResponsesBox,
) -> None:
    email, key = fresh.new_key()
    error = {"code": "context_length_exceeded", "message": TOO_LONG}
    failed = {"type": "response.failed", "response": {"status": "failed", "error": error}}
    fresh.openai_fake.push(Reply(raw=upstream_frames([failed])))
    before = fresh.balance_nanos(email)
    with fresh.openai(key).responses.create(model=NATIVE_MODEL, input="x", stream=True) as stream:
        events = list(stream)
    last = events[-1]
    assert last.type == "response.failed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert last.response.id == "resp_up1" and last.response.model == NATIVE_MODEL
    assert last.response.status == "failed" and last.response.error is not None
    assert (last.response.error.code, last.response.error.message) == (
        "context_length_exceeded", TOO_LONG)  # fmt: skip
    assert fresh.balance_nanos(email) == before
    assert fresh.usage_rows(email)[-1]["status"] == "error"


def test_a_native_stream_ending_early_is_response_failed_too(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(raw=upstream_frames([])))
    with fresh.openai(key).responses.create(model=NATIVE_MODEL, input="x", stream=True) as stream:
        events = list(stream)
    last = events[-1]
    assert last.type == "response.failed" and last.response.id == "resp_up1"
    assert last.response.error is not None and last.response.error.code == "server_error"
    assert last.response.output[0].status == "incomplete"  # what was streamed of it


def test_the_boxs_own_reasoning_items_stay_off_a_native_upstream(fresh: ResponsesBox) -> None:
    """A thread that switches from a translated Anthropic model to a native one (Codex's /model)
    hands back reasoning items whose `encrypted_content` the box made of Claude's signed
    thinking. No Responses upstream can read them: OpenAI refuses the whole request with 400
    invalid_encrypted_content ("could not be verified"), on every later turn of the thread.
    They are left out; the upstream's own reasoning items go back as they were."""
    _, key = fresh.new_key()
    client = fresh.openai(key)
    fresh.fake.script(AnthropicReply(text="Four.", thinking="2+2 is 4."))
    first = client.responses.create(
        model=ANTHROPIC_MODEL, input="2+2?", reasoning={"effort": "medium"},
        max_output_tokens=4000, include=["reasoning.encrypted_content"],
    )  # fmt: skip
    ours = first.output[0]
    assert ours.type == "reasoning" and (ours.encrypted_content or "").startswith("codelace-")
    theirs = {"type": "reasoning", "id": "rs_openai1", "summary": [],
              "encrypted_content": "gAAAAABopenai-sealed"}  # fmt: skip
    fresh.openai_fake.push(Reply(content="Six."))
    history = [{"role": "user", "content": "2+2?"}, *first.output, theirs,
               {"role": "user", "content": "3+3?"}]  # fmt: skip
    answer = client.responses.create(model=NATIVE_MODEL, input=history)  # type: ignore[arg-type]
    assert answer.output_text == "Six."
    sent = fresh.openai_fake.requests[-1].body["input"]
    assert [item.get("type", "message") for item in sent] == [
        "message", "message", "reasoning", "message"]  # fmt: skip
    assert sent[2] == theirs
