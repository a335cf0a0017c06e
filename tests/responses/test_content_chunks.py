"""Answers whose `content` is a list of typed chunks, as Mistral's reasoning models (Magistral,
Mistral Small with reasoning_effort) give it: `{"type": "thinking", "thinking": [{"type": "text",
"text": ...}]}` and `{"type": "text", "text": ...}`, streamed or not, in delta chunks too. The
translated routes read the text as the answer and the thinking as its reasoning, as they read
`reasoning_content`; before, only a string content was read and the answer came back empty.
Recorded wire shapes through the pure translations (/v1/responses and /v1/messages). Mistral
refuses that reasoning handed back as `reasoning_content`, and the `max_completion_tokens` of
a translated max_output_tokens (422 extra_forbidden): the call is asked again without (a real
box)."""

from __future__ import annotations

import json
from typing import Any

from codelace_box.providers.base import Usage
from codelace_box.providers.messages_openai import MessagesToOpenAI
from codelace_box.providers.responses_input import chat_reasoning_id
from codelace_box.providers.responses_request import translate_request
from codelace_box.providers.responses_response import translate_completion
from tests.anthropic.wire import parse_sse
from tests.fakes.openai_upstream import Reply
from tests.responses.conftest import OPENAI_MODEL, ResponsesBox
from tests.responses.wire import DATA, MODEL, chat_chunks, load_json, replay, synthesize

THOUGHT = "The user asks for 2 + 2. That is 4."
ANSWER = "2 + 2 = 4."
CONTEXT = translate_request({"model": MODEL, "input": "2 + 2?"}).context


def _texts(events: list[dict[str, Any]], kind: str) -> str:
    return "".join(e["delta"] for e in events if e["type"] == kind)


def test_a_streamed_responses_answer_has_the_text_and_the_reasoning() -> None:
    chunks, upstream = chat_chunks("openai", "mistral_stream_thinking.sse")
    events = synthesize(CONTEXT, chunks, upstream.usage)
    assert _texts(events, "response.reasoning_text.delta") == THOUGHT
    assert _texts(events, "response.output_text.delta") == ANSWER
    final = replay(events)
    assert final.output_text == ANSWER
    assert [item.type for item in final.output] == ["reasoning", "message"]


def test_a_responses_answer_has_the_text_and_the_reasoning() -> None:
    response = translate_completion(
        load_json("mistral_completion_thinking.json"), Usage(12, 28), CONTEXT
    )
    reasoning, message = response["output"]
    assert reasoning["content"] == [{"type": "reasoning_text", "text": THOUGHT}]
    assert message["content"][0]["text"] == ANSWER


def test_a_messages_answer_has_a_thinking_and_a_text_block() -> None:
    message, _ = MessagesToOpenAI().parse_response(load_json("mistral_completion_thinking.json"),
                                                   MODEL)  # fmt: skip
    blocks = [(b["type"], b.get("thinking") or b.get("text")) for b in message["content"]]
    assert blocks == [("thinking", THOUGHT), ("text", ANSWER)]


def test_a_streamed_messages_answer_has_a_thinking_and_a_text_block() -> None:
    stream = MessagesToOpenAI().stream_translator(MODEL)
    events = parse_sse((DATA / "mistral_stream_thinking.sse").read_text())
    out = [event for sse in events for event in stream.feed(sse)] + stream.finish()
    deltas = [e["delta"] for e in out if e["type"] == "content_block_delta"]
    assert "".join(d.get("thinking", "") for d in deltas) == THOUGHT
    assert "".join(d.get("text", "") for d in deltas) == ANSWER
    starts = [e["content_block"]["type"] for e in out if e["type"] == "content_block_start"]
    assert starts == ["thinking", "text"]


def test_reasoning_handed_back_is_left_out_for_a_server_that_refuses_it(
    fresh: ResponsesBox,
) -> None:
    """Codex hands back the model's own reasoning item, which goes to the same model as
    `reasoning_content`: Mistral refuses that field (422 extra_forbidden); asked again without."""
    where = ["body", "messages", 1, "assistant", "reasoning_content"]
    detail = [{"type": "extra_forbidden", "loc": where, "msg": "Extra inputs are not permitted",
               "input": "x"}]  # fmt: skip
    refusal = json.dumps({"object": "error", "message": {"detail": detail}, "param": None,
                          "type": "invalid_request_error", "code": None})  # fmt: skip
    fresh.openai_fake.field_refusals["reasoning_content"] = (422, refusal)
    fresh.openai_fake.push(Reply(content="done"))
    _, key = fresh.new_key()
    reasoning = {"type": "reasoning", "id": chat_reasoning_id(OPENAI_MODEL), "summary": [],
                 "content": [{"type": "reasoning_text", "text": THOUGHT}]}  # fmt: skip
    call = {"type": "function_call", "call_id": "abcDEF123", "name": "Read", "arguments": "{}"}
    output = {"type": "function_call_output", "call_id": "abcDEF123", "output": "text of a"}
    tools: list[Any] = [{"type": "function", "name": "Read", "parameters": {"type": "object"}}]
    items: list[Any] = [{"role": "user", "content": "read a"}, reasoning, call, output]
    try:
        answer = fresh.openai(key).responses.create(model=OPENAI_MODEL, input=items, tools=tools)
        assert answer.output_text == "done"
        sent = [r.body["messages"][1] for r in fresh.openai_fake.requests]
        assert len(sent) == 2 and sent[0]["reasoning_content"] == THOUGHT
        assert "reasoning_content" not in sent[1]
    finally:
        fresh.server.stop()  # forget what this provider refused, for the other tests
        fresh.server.start()
        fresh.openai_fake.field_refusals.clear()


def test_max_output_tokens_reaches_a_server_that_refuses_max_completion_tokens(
    fresh: ResponsesBox,
) -> None:
    """max_output_tokens goes to a chat server as max_completion_tokens and max_tokens; Mistral
    refuses the first (422 extra_forbidden): asked again with max_tokens alone."""
    where = ["body", "max_completion_tokens"]
    detail = [{"type": "extra_forbidden", "loc": where, "msg": "Extra inputs are not permitted",
               "input": 300}]  # fmt: skip
    refusal = json.dumps({"object": "error", "message": {"detail": detail}, "param": None,
                          "type": "invalid_request_error", "code": None})  # fmt: skip
    fresh.openai_fake.field_refusals["max_completion_tokens"] = (422, refusal)
    fresh.openai_fake.push(Reply(content="done"))
    _, key = fresh.new_key()
    try:
        answer = fresh.openai(key).responses.create(model=OPENAI_MODEL, input="hi",
                                                    max_output_tokens=300)  # fmt: skip
        assert answer.output_text == "done"
        sent = [r.body for r in fresh.openai_fake.requests]
        assert len(sent) == 2 and "max_completion_tokens" not in sent[1]
        assert sent[1]["max_tokens"] == 300
    finally:
        fresh.server.stop()  # forget what this provider refused, for the other tests
        fresh.server.start()
        fresh.openai_fake.field_refusals.clear()
