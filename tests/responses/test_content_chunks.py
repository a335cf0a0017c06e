"""Answers whose `content` is a list of typed chunks, as Mistral's reasoning models (Magistral,
Mistral Small with reasoning_effort) give it: `{"type": "thinking", "thinking": [{"type": "text",
"text": ...}]}` and `{"type": "text", "text": ...}`, streamed or not, in delta chunks too. The
translated routes read the text as the answer and the thinking as its reasoning, as they read
`reasoning_content`; before, only a string content was read and the answer came back empty.
Recorded wire shapes through the pure translations (/v1/responses and /v1/messages)."""

from __future__ import annotations

from typing import Any

from codelace_box.providers.base import Usage
from codelace_box.providers.messages_openai import MessagesToOpenAI
from codelace_box.providers.responses_request import translate_request
from codelace_box.providers.responses_response import translate_completion
from tests.anthropic.wire import parse_sse
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
