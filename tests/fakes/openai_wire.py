"""OpenAI's newest answers as its API reference shows them, byte for byte, for the hostile
upstream (tests/fakes/hostile_upstream.py): Responses API streams (`data:` frames with an
`event:` line of the type, `sequence_number`s from 0) and whole `response` objects, and Chat
Completions answers with the usage details of the newest models.

Each `Answer` is one recorded response: a reasoning summary streamed before a message whose
text carries a `url_citation` annotation (`response.reasoning_summary_part.added`,
`response.reasoning_summary_text.delta`, `response.output_text.annotation.added`), cache reads
and GPT-5.6's cache writes (`input_tokens_details.cache_write_tokens`) and reasoning tokens in
`usage`; a `response.queued` before `response.in_progress`; an answer cut at
`max_output_tokens` (`response.incomplete`, with its usage); a `response.failed` and an `error`
event after the text began. `usage` is what the answer bills (its final counts).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
MODEL = "gpt-5.6-terra-2026-07-09"
RESP_ID = "resp_0c1d080fecb57ef6006a1b9470c13481969943899cece7ed2c"
MSG_ID = "msg_0c1d080fecb57ef6006a1b9471e1948196b982a0899437433d"
RS_ID = "rs_0c1d080fecb57ef6006a1b9471a0c48196a6b3d1c4f6b0e2aa"
CITATION = {"type": "url_citation", "start_index": 24, "end_index": 58,
            "url": "https://example.com/weather", "title": "Weather today"}  # fmt: skip


def usage(inputs: int, outputs: int, *, cached: int = 0, writes: int | None = None,
          reasoning: int = 0) -> JSON:  # fmt: skip
    """A Responses `usage` (GPT-5.6 adds `cache_write_tokens` beside `cached_tokens`)."""
    details: JSON = {"cached_tokens": cached}
    if writes is not None:
        details["cache_write_tokens"] = writes
    return {"input_tokens": inputs, "input_tokens_details": details, "output_tokens": outputs,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": inputs + outputs}  # fmt: skip


def response(status: str, output: list[JSON], used: JSON | None, **extra: Any) -> JSON:
    """A `response` object as the reference shows it (unstored, as the box asks)."""
    body: JSON = {
        "id": RESP_ID, "object": "response", "created_at": 1780192368, "status": status,
        "background": False, "billing": {"payer": "developer"}, "completed_at": None,
        "error": None, "incomplete_details": None, "instructions": None,
        "max_output_tokens": 2000, "max_tool_calls": None, "model": MODEL, "output": output,
        "parallel_tool_calls": True, "previous_response_id": None, "prompt_cache_key": None,
        "prompt_cache_retention": "in_memory", "reasoning": {"effort": "medium",
        "summary": "auto"}, "safety_identifier": None, "service_tier": "default",
        "store": False, "temperature": 1.0, "text": {"format": {"type": "text"},
        "verbosity": "medium"}, "tool_choice": "auto", "tools": [], "top_logprobs": 0,
        "top_p": 1.0, "truncation": "disabled", "usage": used, "user": None, "metadata": {},
    }  # fmt: skip
    return body | extra


@dataclass
class Answer:
    """One answer: its stream events (without sequence numbers), its whole body, what it bills."""

    events: list[JSON]
    body: JSON
    usage: JSON
    text: str = ""
    summary: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def numbered(self) -> list[JSON]:
        return [{"type": e["type"], "sequence_number": i, **{k: v for k, v in e.items()
                 if k != "type"}} for i, e in enumerate(self.events)]  # fmt: skip

    def sse(self) -> list[bytes]:
        """The stream as OpenAI frames it: `event: TYPE` then `data: JSON`."""
        return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode()
                for e in self.numbered()]  # fmt: skip

    def whole(self) -> bytes:
        return json.dumps(self.body).encode()


def _reasoning_events(index: int, summary: list[str]) -> tuple[list[JSON], JSON]:
    item: JSON = {"id": RS_ID, "type": "reasoning", "summary": []}
    at = {"item_id": RS_ID, "output_index": index, "summary_index": 0}
    text = "".join(summary)
    done = item | {"summary": [{"type": "summary_text", "text": text}]}
    events = [{"type": "response.output_item.added", "output_index": index, "item": item},
              {"type": "response.reasoning_summary_part.added", **at,
               "part": {"type": "summary_text", "text": ""}}]  # fmt: skip
    events += [{"type": "response.reasoning_summary_text.delta", **at, "delta": piece,
                "obfuscation": "Xk2"} for piece in summary]  # fmt: skip
    events += [
        {"type": "response.reasoning_summary_text.done", **at, "text": text},
        {
            "type": "response.reasoning_summary_part.done",
            **at,
            "part": {"type": "summary_text", "text": text},
        },
        {"type": "response.output_item.done", "output_index": index, "item": done},
    ]
    return events, done


def _message_events(index: int, pieces: list[str], *, annotate: bool = False,
                    close: bool = True) -> tuple[list[JSON], JSON]:  # fmt: skip
    item: JSON = {"id": MSG_ID, "type": "message", "status": "in_progress", "content": [],
                  "role": "assistant"}  # fmt: skip
    at = {"item_id": MSG_ID, "output_index": index, "content_index": 0}
    text = "".join(pieces)
    notes = [CITATION] if annotate else []
    part = {"type": "output_text", "annotations": notes, "logprobs": [], "text": text}
    events = [
        {"type": "response.output_item.added", "output_index": index, "item": item},
        {
            "type": "response.content_part.added",
            **at,
            "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""},
        },
    ]
    events += [{"type": "response.output_text.delta", **at, "delta": piece, "logprobs": [],
                "obfuscation": "a1"} for piece in pieces]  # fmt: skip
    if annotate:
        events.append({"type": "response.output_text.annotation.added", **at,
                       "annotation_index": 0, "annotation": CITATION})  # fmt: skip
    done = item | {"status": "completed", "content": [part]}
    if close:
        events += [
            {"type": "response.output_text.done", **at, "text": text, "logprobs": []},
            {"type": "response.content_part.done", **at, "part": part},
            {"type": "response.output_item.done", "output_index": index, "item": done},
        ]
    return events, done


def _answer(output_events: list[JSON], output: list[JSON], used: JSON, *, queued: bool = False,
            end: str = "response.completed", **extra: Any) -> Answer:  # fmt: skip
    status = {"response.completed": "completed", "response.incomplete": "incomplete"}[end]
    start = response("in_progress", [], None)
    events = [{"type": "response.created", "response": start}]
    if queued:
        events.append({"type": "response.queued", "response": start | {"status": "queued"}})
    events.append({"type": "response.in_progress", "response": start})
    final = response(status, output, used, completed_at=1780192369, **extra)
    events += [*output_events, {"type": end, "response": final}]
    return Answer(events, final, used)


PIECES = ["It is sunny in Paris ", "today, says the weather service, ", "at 24 degrees."]
SUMMARY = ["**Checking the weather**\n\n", "The user asks for today's weather."]


def summary_and_citation() -> Answer:
    """Reasoning summary, then a message with a url_citation; 1,920 of 2,006 input tokens read
    from the cache, 192 of 300 output tokens reasoning."""
    thought, rs = _reasoning_events(0, SUMMARY)
    said, msg = _message_events(1, PIECES, annotate=True)
    answer = _answer([*thought, *said], [rs, msg],
                     usage(2006, 300, cached=1920, writes=0, reasoning=192))  # fmt: skip
    answer.text, answer.summary = "".join(PIECES), "".join(SUMMARY)
    return answer


def cache_write() -> Answer:
    """GPT-5.6's first turn of a cached prefix: 3,207 of 3,219 input tokens written to the
    cache (billed at the cache-write price), queued before it ran."""
    said, msg = _message_events(0, PIECES)
    answer = _answer(said, [msg], usage(3219, 41, cached=0, writes=3207), queued=True)
    answer.text = "".join(PIECES)
    return answer


def incomplete() -> Answer:
    """Cut at max_output_tokens after the text began: `response.incomplete`, billed its usage."""
    said, msg = _message_events(0, PIECES[:2])
    msg = msg | {"status": "incomplete"}
    answer = _answer(said, [msg], usage(1200, 2000, cached=1024, reasoning=1980),
                     end="response.incomplete",
                     incomplete_details={"reason": "max_output_tokens"})  # fmt: skip
    answer.text = "".join(PIECES[:2])
    return answer


def failed_midway() -> list[bytes]:
    """`response.failed` after the text began (a server error), its usage reported."""
    said, msg = _message_events(0, PIECES[:2], close=False)
    answer = _answer(said, [], usage(900, 40))
    failed = response(
        "failed",
        [msg | {"status": "incomplete"}],
        usage(900, 40),
        error={"code": "server_error", "message": "The model failed to generate a response."},
    )
    answer.events[-1] = {"type": "response.failed", "response": failed}
    return answer.sse()


def error_midway() -> list[bytes]:
    """An `error` event after the text began, and nothing more."""
    said, _ = _message_events(0, PIECES[:1], close=False)
    answer = _answer(said, [], usage(900, 40))
    answer.events[-1] = {"type": "error", "code": "server_error",
                         "message": "An error occurred while processing your request.",
                         "param": None}  # fmt: skip
    return answer.sse()


# -- Chat Completions ---------------------------------------------------------------------------

CHAT_TEXT = "It is sunny in Paris today."


def chat_usage(*, cached: int = 1920, writes: int | None = None) -> JSON:
    """A chat `usage` with every detail the newest models give."""
    prompt: JSON = {"cached_tokens": cached, "audio_tokens": 0}
    if writes is not None:
        prompt["cache_write_tokens"] = writes
    return {"prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
            "prompt_tokens_details": prompt,
            "completion_tokens_details": {"reasoning_tokens": 192, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}}  # fmt: skip


def chat_body(used: JSON) -> bytes:
    message = {"role": "assistant", "content": CHAT_TEXT, "refusal": None, "annotations": []}
    body = {"id": "chatcmpl-C9x1", "object": "chat.completion", "created": 1780192368,
            "model": MODEL, "choices": [{"index": 0, "message": message, "logprobs": None,
            "finish_reason": "stop"}], "usage": used, "service_tier": "default",
            "system_fingerprint": None}  # fmt: skip
    return json.dumps(body).encode()


def chat_sse(used: JSON) -> list[bytes]:
    base = {"id": "chatcmpl-C9x1", "object": "chat.completion.chunk", "created": 1780192368,
            "model": MODEL, "service_tier": "default", "system_fingerprint": None}  # fmt: skip
    deltas = [{"role": "assistant", "content": "", "refusal": None}, {"content": CHAT_TEXT}, {}]
    chunks = [base | {"choices": [{"index": 0, "delta": d, "logprobs": None,
              "finish_reason": "stop" if not d else None}], "usage": None}
              for d in deltas]  # fmt: skip
    chunks.append(base | {"choices": [], "usage": used, "obfuscation": "Hn4"})
    return [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]
