"""A fake OpenAI Chat Completions server: a real HTTP server on 127.0.0.1 (aiohttp, own thread).

It speaks the wire format as api.openai.com does: pretty-printed `chat.completion` JSON; streams as
`text/event-stream` with compact `data: {chunk}` events (role chunk, content deltas, finish chunk,
`"usage": null` on every chunk and a final `choices: []` usage chunk when
`stream_options.include_usage` is set, an `obfuscation` pad), then `data: [DONE]`; errors in the
`{"error": {message, type, param, code}}` envelope. It validates requests like the real API (Bearer
key, model, non-empty messages, stream_options only with stream, a `user` of at most 64 characters,
a strict json_schema `response_format` or function only with a schema strict mode takes, function
names of at most 64 characters) and is
scripted per test with `Reply` objects: text, tool calls, usage or none, errors and statuses,
delays, a connection dropped or an error event mid-stream, a stream that hangs until the client
leaves, a gzip-compressed answer, or a `raw` body written byte for byte (other servers' quirks, or
tens of megabytes from a generator; it can pause midway until the test lets it go on); hidden
reasoning tokens reported in the usage after a pause, an endless stream that ignores max_tokens.
Streams and raw bodies are written by tests/fakes/openai_chat_stream.py; `POST /v1/embeddings` and
`/v1/responses` by openai_embeddings.py and openai_responses.py. `GET /v1/models` (the box's key
probe) answers 200 unless `probe_status` names the key (a status, or `MISSING_SCOPE`: OpenAI's 401
to a restricted key that may not list models; `TRICKLE`). A model named in `no_reasoning` refuses
`reasoning_effort` with OpenAI's 400 for a model that does not reason (NO_REASONING;
NO_REASONING_LEGACY is the older and Azure wording), scripts untouched; a top-level field (or a
field of a message) named in `field_refusals` is refused as a stricter compatible server refuses a
field it does not know (the status and body given: Groq's, Gemini's, Cerebras', older vLLM's),
scripts untouched.

    fake = FakeOpenAI().start()
    fake.push(Reply(content="Hi", prompt_tokens=5))   # the next request gets this reply
    fake.base_url                                     # "http://127.0.0.1:PORT/v1"
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer
from tests.fakes.openai_chat_stream import FINGERPRINT, raw_reply, stream_reply
from tests.fakes.openai_embeddings import embeddings
from tests.fakes.openai_responses import responses

MAX_USER_CHARS = 64  # OpenAI refuses a longer `user` (string_above_max_length)
MAX_FUNCTION_NAME = 64  # ... and a longer function name, in tools or earlier calls
MISSING_SCOPE = 4010  # a probe_status: the key works, but it may not list models
TRICKLE = 2000  # a probe_status: 200, then a byte a second for a minute (never done)
HUGE = 2001  # a probe_status: 200 with a body of 256 MiB (spaces, then a model list)
# OpenAI's 400 to reasoning_effort for a model that does not reason (gpt-4o, gpt-4.1), now
# (code unsupported_parameter, param reasoning_effort) and before (and Azure's: no code, param).
NO_REASONING = "Unsupported parameter: 'reasoning_effort' is not supported with this model."
NO_REASONING_LEGACY = "Unrecognized request argument supplied: reasoning_effort"


@dataclass
class Reply:
    """What the fake answers to one request."""

    content: str = "Hello from the fake upstream."
    prompt_tokens: int = 11
    cached_tokens: int = 0  # of prompt_tokens: read from the prompt cache
    completion_tokens: int | None = None  # None: one token per streamed piece
    completion_tokens_from_cap: bool = False  # report the request's max_tokens as produced
    # (its `n_predict` first when it sends one: llama.cpp's server reads that over max_tokens)
    reasoning_tokens: int = 0  # of completion_tokens: hidden reasoning, never streamed
    pieces: list[str] | None = None  # stream deltas; default: the content split at spaces
    tool_calls: list[dict[str, Any]] | None = None  # [{"name": ..., "arguments": "..."}]
    finish_reason: str | None = None  # default: "tool_calls" with tools, else "stop"
    usage: bool = True  # False: never report usage (as some compatible servers do)
    status: int = 200
    error: dict[str, Any] | None = None  # the error object for status != 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_before: float = 0.0  # seconds before the status line
    hang_up: bool = False  # after delay_before, close the connection without any answer
    piece_delay: float = 0.0  # seconds between stream events
    drop_after: int | None = None  # stream: cut the connection after N content events
    error_after: int | None = None  # stream: send an error event after N content events
    hang_after: int | None = None  # stream: go silent after N events until the client leaves
    raw: Iterable[bytes] | None = None  # the body verbatim, these writes in order (any status)
    pause_after: int | None = None  # raw: after N writes, set `paused`, wait for `resume`
    tail_delay: float = 0.0  # stream: seconds between the last content event and the finish
    endless: str | None = None  # stream: after the content, this piece again and again (until
    endless_limit: int = 20_000  # the client leaves, or this many), ignoring max_tokens
    content_type: str = "text/event-stream; charset=utf-8"  # of a `raw` body
    gzip: bool = False  # compress the answer (content-encoding: gzip), as proxies may

    def stream_pieces(self) -> list[str]:
        if self.pieces is not None:
            return self.pieces
        words = self.content.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]


@dataclass
class Recorded:
    """One request the fake received."""

    path: str
    headers: dict[str, str]
    body: Any

    @property
    def api_key(self) -> str:
        return self.headers.get("authorization", "").removeprefix("Bearer ").strip()


async def _trickle(request: web.Request) -> web.StreamResponse:
    answer = web.StreamResponse(headers={"content-type": "application/json"})
    await answer.prepare(request)
    for _ in range(60):
        await answer.write(b" ")
        await asyncio.sleep(1)
    await answer.write(b'{"object": "list", "data": []}')
    return answer


async def _huge(request: web.Request) -> web.StreamResponse:
    answer = web.StreamResponse(headers={"content-type": "application/json"})
    await answer.prepare(request)
    chunk = b" " * (1 << 20)
    for _ in range(256):
        await answer.write(chunk)
    await answer.write(b'{"object": "list", "data": []}')
    return answer


def _error(status: int, message: str, kind: str, code: str | None = None, param: Any = None):
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.Response(
        status=status, text=json.dumps(body, indent=2), content_type="application/json"
    )


def _strict_problem(schema: Any, where: tuple[str, ...] = ()) -> str | None:
    """What OpenAI's strict structured outputs refuse in a schema: an object whose `required`
    leaves out one of its properties, or that allows additional ones."""
    if isinstance(schema, list):
        return next(filter(None, (_strict_problem(s, where) for s in schema)), None)
    if not isinstance(schema, dict):
        return None
    properties = schema.get("properties")
    if schema.get("type") == "object" and isinstance(properties, dict):
        missing = [k for k in properties if k not in (schema.get("required") or [])]
        if missing:
            return (
                f"In context={where}, 'required' is required to be supplied and to be an "
                f"array including every key in properties. Missing '{missing[0]}'."
            )
        if schema.get("additionalProperties") is not False:
            return (
                f"In context={where}, 'additionalProperties' is required to be supplied "
                "and to be false."
            )
    for key, value in schema.items():
        found = _strict_problem(value, (*where, key)) if isinstance(value, dict | list) else None
        if found:
            return found
    return None


def _check_strict_format(body: dict[str, Any]) -> web.Response | None:
    """OpenAI's 400 for a strict json_schema response_format, or a strict function, whose
    schema strict mode cannot enforce."""
    form = body.get("response_format")
    spec = form.get("json_schema") if isinstance(form, dict) else None
    strict = [("response_format", spec, "schema")] if isinstance(spec, dict) else []
    for tool in body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict):
            strict.append(("function", function, "parameters"))
    for kind, holder, key in strict:
        problem = _strict_problem(holder.get(key)) if holder.get("strict") is True else None
        if problem is not None:
            message = f"Invalid schema for {kind} '{holder.get('name')}': {problem}"
            return _error(400, message, "invalid_request_error", None, kind)
    return None


def _function_names(body: dict[str, Any]) -> list[tuple[str, Any]]:
    """Where each function name of a request is (OpenAI's param path), and the name."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)]
    named = [(f"tools[{i}].function.name", (tool.get("function") or {}).get("name"))
             for i, tool in enumerate(tools)]  # fmt: skip
    for i, message in enumerate(body.get("messages") or []):
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        named += [(f"messages[{i}].tool_calls[{j}].function.name",
                   (call.get("function") or {}).get("name"))
                  for j, call in enumerate(calls or []) if isinstance(call, dict)]  # fmt: skip
    return named


def _check_function_names(body: dict[str, Any]) -> web.Response | None:
    """OpenAI's 400 for a function name over 64 characters (Anthropic takes 128)."""
    for param, name in _function_names(body):
        if isinstance(name, str) and len(name) > MAX_FUNCTION_NAME:
            message = (f"Invalid '{param}': string too long. Expected a string with maximum "
                       f"length {MAX_FUNCTION_NAME}, but got a string with length {len(name)} "
                       "instead.")  # fmt: skip
            return _error(400, message, "invalid_request_error", "string_above_max_length", param)
    return None


class FakeOpenAI(LoopbackServer):
    """The fake server; start() it, push() replies, read `requests` afterwards."""

    label = "fake OpenAI server"
    shutdown_timeout = 1.0

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Recorded] = []
        self.script: deque[Reply] = deque()
        self.default = Reply()
        self.tagged: dict[str, Reply] = {}  # a request's `user` field -> its reply (any order)
        self.key_status: dict[str, int] = {}  # API key -> status it always gets (401, 429...)
        self.client_gone = threading.Event()  # set when a hanging stream saw the client leave
        self.probe_status: dict[str, int] = {}  # API key -> status of GET /v1/models (401...)
        self.probes: list[str] = []  # the API keys GET /v1/models was asked with, in order
        self.no_reasoning: dict[str, str] = {}  # model -> its 400 message to reasoning_effort
        self.field_refusals: dict[str, tuple[int, str]] = {}  # field -> (status, body) refusing it
        self.paused = threading.Event()  # a `raw` body reached its pause_after
        self.resume = threading.Event()  # set by the test: the paused body goes on

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *replies: Reply) -> None:
        """Queue replies for the next requests (afterwards: `default`)."""
        self.script.extend(replies)

    def reset(self) -> None:
        self.requests.clear()
        self.script.clear()
        self.tagged.clear()
        self.key_status.clear()
        self.probe_status.clear()
        self.probes.clear()
        self.no_reasoning.clear()
        self.field_refusals.clear()
        self.default = Reply()
        for event in (self.client_gone, self.paused, self.resume):
            event.clear()

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=50 * 1024 * 1024)  # OpenAI takes large inline media
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", partial(embeddings, self))
        app.router.add_post("/v1/responses", partial(responses, self))
        app.router.add_get("/v1/models", self._models)
        return app

    async def _models(self, request: web.Request) -> web.Response:
        key = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        self.probes.append(key)
        status = self.probe_status.get(key, 200 if key else 401)
        if status == TRICKLE:
            return await _trickle(request)
        if status == HUGE:
            return await _huge(request)
        if status == MISSING_SCOPE:
            return _error(401, "You have insufficient permissions for this operation. Missing "
                          "scopes: api.model.read. Check that you have the correct role in your "
                          "organization (Reader, Writer, Owner) and project (Member, Owner), and "
                          "if you're using a restricted API key, that it has the necessary "
                          "scopes.", "invalid_request_error", "missing_scope")  # fmt: skip
        if status == 401:
            return _error(401, "Incorrect API key provided.", "invalid_request_error",
                          "invalid_api_key")  # fmt: skip
        if status != 200:
            return _error(status, f"Models answered {status}.", "server_error")
        models = [{"id": "gpt-4o-mini-2024-07-18", "object": "model", "owned_by": "system"}]
        return web.json_response({"object": "list", "data": models})

    def _next_reply(self, body: Any) -> Reply:
        tag = body.get("user") if isinstance(body, dict) else None
        if isinstance(tag, str) and tag in self.tagged:
            return self.tagged[tag]
        return self.script.popleft() if self.script else self.default

    async def record(self, request: web.Request) -> Recorded:
        """Keep a request as it came (headers lowercased, the body parsed; None if not JSON)."""
        try:
            body: Any = json.loads(await request.read())
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        recorded = Recorded(request.path, headers, body)
        self.requests.append(recorded)
        return recorded

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        headers, body = recorded.headers, recorded.body
        refusal = self._refuse(headers, body)
        if refusal is not None:
            return refusal
        reply = self._next_reply(body)
        if reply.delay_before:
            await asyncio.sleep(reply.delay_before)
        if reply.hang_up and request.transport is not None:
            request.transport.close()
            return web.Response()  # never sent: the connection is gone
        if reply.raw is not None:
            return await raw_reply(self, request, reply)
        if reply.status != 200:
            error = reply.error or {"message": "The server had an error", "type": "server_error"}
            full = {"param": None, "code": None} | error
            return web.Response(
                status=reply.status,
                text=json.dumps({"error": full}, indent=2),
                content_type="application/json",
                headers=reply.headers,
            )
        if body.get("stream"):
            return await stream_reply(self, request, body, reply)
        return self._complete(body, reply)

    def _refuse(self, headers: dict[str, str], body: Any) -> web.Response | None:
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return _error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "invalid_request_error",
            )
        key = auth[7:].strip()
        status = self.key_status.get(key)
        if status == 401:
            masked = key[:3] + "*" * 8 + key[-4:]
            return _error(
                401,
                f"Incorrect API key provided: {masked}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                "invalid_api_key",
            )
        if status is not None:
            return _error(status, f"Key answered {status}.", "server_error")
        return (
            self._check_body(body)
            or self._check_fields(body)
            or self._check_reasoning(body)
            or _check_strict_format(body)
            or _check_function_names(body)
        )

    def _check_fields(self, body: dict[str, Any]) -> web.Response | None:
        """A stricter server's refusal of a top-level field it does not know."""
        messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
        for name, (status, text) in self.field_refusals.items():
            if name in body or any(name in message for message in messages):
                return web.Response(status=status, text=text, content_type="application/json")
        return None

    def _check_reasoning(self, body: dict[str, Any]) -> web.Response | None:
        """OpenAI's 400 when a model that does not reason is asked for reasoning_effort."""
        message = self.no_reasoning.get(body["model"])
        if message is None or body.get("reasoning_effort") is None:
            return None
        if message == NO_REASONING:
            return _error(400, message, "invalid_request_error", "unsupported_parameter",
                          "reasoning_effort")  # fmt: skip
        return _error(400, message, "invalid_request_error")

    @staticmethod
    def _check_body(body: Any) -> web.Response | None:
        if not isinstance(body, dict):
            return _error(
                400, "We could not parse the JSON body of your request.", "invalid_request_error"
            )
        if not isinstance(body.get("model"), str):
            return _error(400, "you must provide a model parameter", "invalid_request_error")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(
                400, "[] is too short - 'messages'", "invalid_request_error", None, "messages"
            )
        user = body.get("user")
        if isinstance(user, str) and len(user) > MAX_USER_CHARS:
            return _error(
                400,
                f"Invalid 'user': string too long. Expected a string with maximum length "
                f"{MAX_USER_CHARS}, but got a string with length {len(user)} instead.",
                "invalid_request_error",
                "string_above_max_length",
                "user",
            )
        if body.get("stream_options") is not None and not body.get("stream"):
            return _error(
                400,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                "invalid_request_error",
                "invalid_value",
                "stream_options",
            )
        return None

    @staticmethod
    def _completion_tokens(body: dict[str, Any], reply: Reply) -> int:
        if reply.completion_tokens_from_cap:
            cap = body.get("n_predict") or body.get("max_completion_tokens")
            return int(cap or body.get("max_tokens") or 0)
        if reply.completion_tokens is not None:
            return reply.completion_tokens
        return len(reply.stream_pieces()) + len(reply.tool_calls or [])

    def usage(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        completion = self._completion_tokens(body, reply)
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": reply.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reply.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def _complete(self, body: dict[str, Any], reply: Reply) -> web.Response:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if reply.tool_calls else reply.content,
            "refusal": None,
            "annotations": [],
        }
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": f"call_{i}", "type": "function", "function": dict(call)}
                for i, call in enumerate(reply.tool_calls)
            ]
        finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
        payload: dict[str, Any] = {
            "id": "chatcmpl-" + secrets.token_hex(12),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
        }
        if reply.usage:
            payload["usage"] = self.usage(body, reply)
        payload |= {"service_tier": "default", "system_fingerprint": FINGERPRINT}
        response = web.Response(
            text=json.dumps(payload, indent=2),
            content_type="application/json",
            headers=reply.headers,
        )
        if reply.gzip:
            response.enable_compression(web.ContentCoding.gzip)
        return response
