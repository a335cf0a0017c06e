"""A fake Anthropic Messages API on 127.0.0.1: strict request checks, documented answers.

A real aiohttp server in a background thread. `POST /v1/messages` checks the `x-api-key` and
`anthropic-version` headers and validates the body as strictly as the real API
(tests/fakes/anthropic_validation.py), then answers with the next scripted `Reply`: a `message`
JSON body, or SSE (`event: <type>\\ndata: <json>\\n\\n`) in the documented event order
(message_start, content blocks with ping, message_delta, message_stop), with the verdicts of
Claude Code's auto mode (`safeguard_results`) when the request asked for them (under the beta
that allows `safeguards`: tests/fakes/anthropic_safeguards.py). Errors use Anthropic's
shape `{"type": "error", "error": {"type", "message"}, "request_id"}`. `GET /v1/models` (the
box's key probe) lists one model for a known key, 401 for any other. An Anthropic-compatible
server that lags the API (a proxy, an older Bedrock-style gateway) is played by
`refused_fields` (top-level fields it refuses as unknown, as pydantic words it) and
`legacy_output_format` (it takes structured outputs as the older top-level `output_format`,
under the `structured-outputs-2025-11-13` beta).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from tests.fakes.anthropic_checks import media_problem, omits_thinking, thinking_display_problem
from tests.fakes.anthropic_safeguards import safeguard_results
from tests.fakes.anthropic_signatures import SignatureBook
from tests.fakes.anthropic_validation import request_problem
from tests.fakes.loopback import LoopbackServer

JSON = dict[str, Any]
LEGACY_FORMAT_BETA = "structured-outputs-2025-11-13"
ANTHROPIC_VERSION = "2023-06-01"
# What the fake accepts: the version the box's own translation sends, and the one the current
# anthropic SDK (2.x) sends, which /v1/messages forwards as the client sent it.
ANTHROPIC_VERSIONS = frozenset({ANTHROPIC_VERSION, "2026-10-21"})
_ids = itertools.count(1)


@dataclass(frozen=True)
class ToolUse:
    """One tool call the fake model makes."""

    id: str
    name: str
    input: JSON


@dataclass
class Reply:
    """What the fake answers to one request (streamed or not, as the request asks)."""

    text: str = "Hello!"
    tool_uses: list[ToolUse] = field(default_factory=list)
    thinking: str = ""
    signature: str = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrk"
    stop_reason: str | None = None  # default: tool_use if there are tool uses, else end_turn
    stop_sequence: str | None = None
    stop_details: JSON | None = None  # with a refusal: {"type": "refusal", "explanation": ...}
    input_tokens: int = 25
    output_tokens: int = 15
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_creation_1h_tokens: int = 0  # of cache_creation_input_tokens: 1-hour writes
    # False: the writes only in the `cache_creation` object (its 5m/1h split), no flat count
    flat_cache_creation: bool = True
    # a flat count that disagrees with the split (a compatible server's), sent with the split
    flat_cache_creation_reported: int | None = None
    extra_events: list[JSON] = field(default_factory=list)  # stream: sent after message_start
    error_before_content: bool = False  # stream: an `error` event right after message_start
    status: int = 200  # not 200: answer with an Anthropic error body instead
    error_type: str = "api_error"
    error_message: str = "Internal server error"
    error_after_deltas: int | None = None  # stream: send an `error` event after N deltas
    chunk_chars: int = 4  # stream: characters per text_delta / input_json_delta
    delay_sec: float = 0.0  # stream: pause between events
    thinking_omitted: bool = False  # thinking blocks carry only their signature (display omitted)
    thinking_events: list[JSON] = field(default_factory=list)  # stream: as the thinking began
    # server-side compaction's own sampling (its usage: input_tokens, output_tokens, ...), which
    # Anthropic reports in `usage.iterations` only, outside the top-level counts
    compaction: JSON | None = None
    # an advisor call's usage (the advisor model's inference inside the call), reported as an
    # `advisor_message` entry of `usage.iterations`, outside the top-level counts as well
    advisor: JSON | None = None

    @classmethod
    def error(cls, status: int, error_type: str, message: str) -> Reply:
        """An error answer before any stream (e.g. 529 overloaded_error, 401)."""
        return cls(status=status, error_type=error_type, error_message=message)

    def final_stop_reason(self) -> str:
        return self.stop_reason or ("tool_use" if self.tool_uses else "end_turn")

    def blocks(self) -> list[JSON]:
        """The final content blocks of this reply."""
        blocks: list[JSON] = []
        if self.thinking:
            shown = "" if self.thinking_omitted else self.thinking
            blocks.append({"type": "thinking", "thinking": shown, "signature": self.signature})
        if self.text:
            blocks.append({"type": "text", "text": self.text})
        for use in self.tool_uses:
            blocks.append({"type": "tool_use", "id": use.id, "name": use.name, "input": use.input})
        return blocks

    def usage(self, output_tokens: int, final: bool = True) -> JSON:
        usage: JSON = {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "output_tokens": output_tokens,
        }
        if not self.flat_cache_creation:
            del usage["cache_creation_input_tokens"]
        if self.flat_cache_creation_reported is not None:
            usage["cache_creation_input_tokens"] = self.flat_cache_creation_reported
        split = self.flat_cache_creation_reported is not None or not self.flat_cache_creation
        if self.cache_creation_1h_tokens or split:
            usage["cache_creation"] = {
                "ephemeral_5m_input_tokens": self.cache_creation_input_tokens
                - self.cache_creation_1h_tokens,
                "ephemeral_1h_input_tokens": self.cache_creation_1h_tokens,
            }
        if final and (self.compaction is not None or self.advisor is not None):
            iterations: list[JSON] = [{"type": "message", **usage}]
            if self.compaction is not None:
                iterations.insert(0, {"type": "compaction", **self.compaction})
            if self.advisor is not None:
                iterations.append({"type": "advisor_message", **self.advisor})
            usage["iterations"] = iterations
        return usage


@dataclass
class Recorded:
    """One request the fake received (headers as sent, body parsed)."""

    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)  # when its body was read


def error_body(error_type: str, message: str) -> JSON:
    """Anthropic's error body."""
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": f"req_fake{next(_ids):06d}",
    }


def message_body(reply: Reply, model: str) -> JSON:
    """The non-streaming `message` for a reply."""
    return {
        "id": f"msg_fake{next(_ids):06d}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": reply.blocks(),
        "stop_reason": reply.final_stop_reason(),
        "stop_sequence": reply.stop_sequence,
        **({"stop_details": reply.stop_details} if reply.stop_details is not None else {}),
        "usage": reply.usage(reply.output_tokens),
    }


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def _block_events(index: int, block: JSON, size: int) -> list[JSON]:
    """content_block_start, its deltas and content_block_stop for one final block."""
    kind = block["type"]
    start: JSON
    deltas: list[JSON]
    if kind == "thinking":
        start = {"type": "thinking", "thinking": ""}
        deltas = [
            {"type": "thinking_delta", "thinking": p} for p in _pieces(block["thinking"], size)
        ]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind == "text":
        start = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in _pieces(block["text"], size)]
    else:
        start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        # a tool without input streams only the empty first fragment, as Anthropic does
        pieces = ["", *_pieces(json.dumps(block["input"]), size)] if block["input"] else [""]
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
    events: list[JSON] = [{"type": "content_block_start", "index": index, "content_block": start}]
    events += [{"type": "content_block_delta", "index": index, "delta": d} for d in deltas]
    events.append({"type": "content_block_stop", "index": index})
    return events


def stream_events(reply: Reply, model: str, safeguards: list[JSON] | None = None) -> list[JSON]:
    """The documented event sequence for a reply, with an `error` event if scripted (and the
    `safeguard_results` asked for in its message_delta)."""
    start = message_body(reply, model)
    start.update(content=[], stop_reason=None, stop_sequence=None, usage=reply.usage(1, False))
    start.pop("stop_details", None)
    events: list[JSON] = [{"type": "message_start", "message": start}, *reply.extra_events]
    if reply.error_before_content:
        error = error_body(reply.error_type, reply.error_message)
        error.pop("request_id")
        return [*events, error]
    for index, block in enumerate(reply.blocks()):
        block_events = _block_events(index, block, reply.chunk_chars)
        if block["type"] == "thinking":  # (pings while the model thinks, say)
            block_events[1:1] = reply.thinking_events
        events += block_events
        if index == 0:
            events.insert(2, {"type": "ping"})
    events.append(
        {
            "type": "message_delta",
            "delta": {
                "stop_reason": reply.final_stop_reason(),
                "stop_sequence": reply.stop_sequence,
                **({"stop_details": reply.stop_details} if reply.stop_details is not None else {}),
                **({"safeguard_results": safeguards} if safeguards is not None else {}),
            },
            # cumulative: the current API repeats the input-side counts here
            "usage": reply.usage(reply.output_tokens),
        }
    )
    events.append({"type": "message_stop"})
    if reply.error_after_deltas is not None:
        events = _cut_with_error(events, reply)
    return events


def _cut_with_error(events: list[JSON], reply: Reply) -> list[JSON]:
    kept: list[JSON] = []
    deltas = 0
    for event in events:
        if event["type"] == "content_block_delta":
            if deltas == reply.error_after_deltas:
                break
            deltas += 1
        kept.append(event)
    kept.append(error_body(reply.error_type, reply.error_message))
    kept[-1].pop("request_id")
    return kept


def count_tokens_of(body: JSON) -> int:
    """What the fake's count_tokens answers for a body."""
    return 3 + len(json.dumps(body["messages"])) // 4


def sse_bytes(event: JSON) -> bytes:
    """One event as Anthropic frames it."""
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


class FakeAnthropic(LoopbackServer):
    """The fake API server and the test's controls (script replies, read recorded requests)."""

    label = "fake Anthropic server"

    def __init__(self, api_keys: tuple[str, ...] = ("sk-ant-test-key",)) -> None:
        super().__init__()
        self.api_keys = set(api_keys)
        self.replies: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self.refused_fields: set[str] = set()  # top-level fields refused as unknown
        self.legacy_output_format = False  # takes `output_format` (under its beta)
        self.busy_keys: set[str] = set()  # their streams: an overloaded error before content
        self.signatures = SignatureBook()  # which models each thinking signature is for

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: Reply) -> None:
        """Queue the answers to the next requests, in order (then: the default Reply)."""
        self.replies.extend(replies)

    def reset(self) -> None:
        self.replies.clear()
        self.requests.clear()
        self.refused_fields.clear()
        self.legacy_output_format = False
        self.busy_keys.clear()
        self.signatures.clear()

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_post("/v1/messages", self._handle)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_get("/v1/models", self._models)
        return app

    async def _count_tokens(self, request: web.Request) -> web.Response:
        """Anthropic's count_tokens: a deterministic count of the body's messages."""
        body = await request.json()
        self.requests.append(Recorded(dict(request.headers), body))
        if request.headers.get("x-api-key") not in self.api_keys:
            answer = error_body("authentication_error", "invalid x-api-key")
            return web.json_response(answer, status=401)
        if not isinstance(body.get("model"), str) or not isinstance(body.get("messages"), list):
            answer = error_body("invalid_request_error", "model and messages are required")
            return web.json_response(answer, status=400)
        return web.json_response({"input_tokens": count_tokens_of(body)})

    async def _models(self, request: web.Request) -> web.Response:
        if request.headers.get("x-api-key") not in self.api_keys:
            return web.json_response(
                error_body("authentication_error", "invalid x-api-key"), status=401
            )
        model = {"type": "model", "id": "claude-test", "display_name": "Claude Test"}
        return web.json_response({"data": [model], "has_more": False})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.requests.append(Recorded(dict(request.headers), body))
        refusal = self._refusal(request, body)
        if refusal is not None:
            return refusal
        reply = self.replies.popleft() if self.replies else Reply()
        if request.headers.get("x-api-key") in self.busy_keys:
            reply = replace(reply, error_before_content=True, error_type="overloaded_error",
                            error_message="Overloaded")  # fmt: skip
        if omits_thinking(body):
            reply = replace(reply, thinking_omitted=True)
        if reply.status != 200:
            answer = error_body(reply.error_type, reply.error_message)
            return web.json_response(answer, status=reply.status)
        if reply.thinking:
            self.signatures.issue(reply.signature, body["model"])
        results = safeguard_results(body, [use.id for use in reply.tool_uses])
        if body.get("stream"):
            return await self._stream(request, reply, body["model"], results)
        answer = message_body(reply, body["model"])
        if results is not None:
            answer["safeguard_results"] = results
        return web.json_response(answer)

    def _refusal(self, request: web.Request, body: Any) -> web.Response | None:
        if request.headers.get("x-api-key") not in self.api_keys:
            answer = error_body("authentication_error", "invalid x-api-key")
            return web.json_response(answer, status=401)
        if request.headers.get("anthropic-version") not in ANTHROPIC_VERSIONS:
            answer = error_body("invalid_request_error", "anthropic-version: header is required")
            return web.json_response(answer, status=400)
        beta = ",".join(request.headers.getall("anthropic-beta", []))
        problem = self._lagging_problem(body, beta)
        if problem is None:
            problem = request_problem(self._without_legacy(body), beta) or media_problem(body)
            problem = problem or thinking_display_problem(body, beta)
            problem = problem or self.signatures.problem(body)
        if problem is not None:
            return web.json_response(error_body("invalid_request_error", problem), status=400)
        return None

    def _lagging_problem(self, body: Any, beta: str) -> str | None:
        """What a server lagging the API refuses: fields it does not know, and an
        `output_format` without its beta."""
        if not isinstance(body, dict):
            return None
        for name in sorted(self.refused_fields & set(body)):
            return f"{name}: Extra inputs are not permitted"
        legacy = body.get("output_format")
        if self.legacy_output_format and legacy is not None:
            if LEGACY_FORMAT_BETA not in beta:
                return f"output_format: requires the anthropic-beta {LEGACY_FORMAT_BETA}"
            if not isinstance(legacy, dict) or legacy.get("type") != "json_schema":
                return "output_format: expected {type: json_schema, schema: {...}}"
        return None

    def _without_legacy(self, body: Any) -> Any:
        """The body the current API's checks see (the legacy field checked apart)."""
        if self.legacy_output_format and isinstance(body, dict):
            return {k: v for k, v in body.items() if k != "output_format"}
        return body

    async def _stream(
        self, request: web.Request, reply: Reply, model: str, safeguards: list[JSON] | None
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
            }
        )
        await response.prepare(request)
        for event in stream_events(reply, model, safeguards):
            await response.write(sse_bytes(event))
            if reply.delay_sec:
                await asyncio.sleep(reply.delay_sec)
        await response.write_eof()
        return response
