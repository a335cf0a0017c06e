"""A hostile upstream on 127.0.0.1: answers exactly the bytes a test scripts, on any API path.

Where the other fakes speak one provider's API faithfully, this one misbehaves on demand, for
both kinds of provider at once (`/v1/chat/completions`, `/v1/messages` and its
`/count_tokens`, `/v1/responses`, `/v1/embeddings`): each request gets the next scripted `Act`
(a status, headers, and body writes in order: bytes, or a float for a pause in seconds), and
after its writes it ends the body properly, hangs until the client leaves (`hang`), or drops the
connection in the middle of the chunked body (`drop`); its `interim` bytes (1xx interim
answers) go before the head. `key_acts` answers every request made with a given key the same
way (a key the provider refuses), and `probe_status` what GET /v1/models (the box's key probe)
answers to a key (`probe_acts`: the whole answer, as an upstream words it).

    hostile = HostileUpstream().start()
    hostile.push(Act(200, [b'data: {"choices": [', 0.2], drop=True))
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from tests.fakes.loopback import LoopbackServer

SSE = "text/event-stream"
JSON_TYPE = "application/json"


@dataclass
class Act:
    """How the hostile upstream answers one request."""

    status: int = 200
    writes: list[bytes | float] = field(default_factory=list)  # bytes, or a pause (seconds)
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # after the writes: cut the connection inside the body
    hang: bool = False  # after the writes: say nothing more until the client leaves
    interim: list[bytes | float] = field(default_factory=list)  # before the head: raw bytes
    # (1xx interim answers) or pauses
    length: int | None = None  # the Content-Length to declare (pauses between writes or not)


@dataclass
class Seen:
    """One request the hostile upstream received."""

    path: str
    key: str
    body: Any
    at: float = field(default_factory=time.monotonic)  # when its body was read
    peer: Any = None  # the box's end of the connection (host, port): the same on a reused one


def sse(*events: Any, event: str | None = None) -> bytes:
    """`data:` events (JSON-encoded unless bytes), each with an `event:` line when given."""
    out = b""
    for item in events:
        data = item if isinstance(item, bytes) else json.dumps(item).encode()
        out += (f"event: {event}\n".encode() if event else b"") + b"data: " + data + b"\n\n"
    return out


def anthropic_event(data: dict[str, Any]) -> bytes:
    """One Anthropic stream event (its `event:` line is its type)."""
    return sse(data, event=str(data["type"]))


class HostileUpstream(LoopbackServer):
    """The server; start() it, push() acts, read `seen` afterwards."""

    label = "hostile upstream"
    shutdown_timeout = 1.0

    def __init__(self) -> None:
        super().__init__()
        self.script: deque[Act] = deque()
        self.default = Act(500, [b'{"error": {"message": "nothing scripted"}}'])
        self.key_acts: dict[str, Act] = {}
        self.probe_status: dict[str, int] = {}
        self.probe_acts: dict[str, Act] = {}
        self.seen: list[Seen] = []
        self.probes: list[str] = []
        self.client_gone = threading.Event()  # the box hung up before the answer's end

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *acts: Act) -> None:
        self.script.extend(acts)

    def reset(self) -> None:
        self.script.clear()
        self.key_acts.clear()
        self.probe_status.clear()
        self.probe_acts.clear()
        self.seen.clear()
        self.probes.clear()
        self.client_gone.clear()
        self.default = Act(500, [b'{"error": {"message": "nothing scripted"}}'])

    def build_app(self) -> web.Application:
        app = web.Application()
        count = "/v1/messages/count_tokens"
        paths = ("/v1/chat/completions", "/v1/messages", count, "/v1/responses", "/v1/embeddings")
        for path in paths:
            app.router.add_post(path, self._answer)
        app.router.add_get("/v1/models", self._models)
        return app

    @staticmethod
    def _key(request: web.Request) -> str:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        return request.headers.get("x-api-key", "") or bearer

    async def _models(self, request: web.Request) -> web.Response:
        key = self._key(request)
        self.probes.append(key)
        if key in self.probe_acts:
            act = self.probe_acts[key]
            body = b"".join(w for w in act.writes if isinstance(w, bytes))
            return web.Response(status=act.status, body=body, content_type=act.content_type)
        status = self.probe_status.get(key, 200)
        body = {"object": "list", "data": [{"id": "m", "object": "model", "type": "model"}]}
        if status != 200:
            body = {"error": {"type": "authentication_error", "message": "invalid x-api-key"}}
        return web.json_response(body, status=status)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        key = self._key(request)
        try:
            body: Any = json.loads(await request.read())
        except ValueError:
            body = None
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.seen.append(Seen(request.path, key, body, peer=peer))
        act = self.key_acts.get(key) or (self.script.popleft() if self.script else self.default)
        for early in act.interim:
            if isinstance(early, bytes):
                assert request.transport is not None
                request.transport.write(early)
            else:
                await asyncio.sleep(early)
        response = web.StreamResponse(status=act.status, headers=act.headers)
        response.content_type = act.content_type
        if act.length is not None:
            response.content_length = act.length
        elif not act.drop and not act.hang and all(isinstance(w, bytes) for w in act.writes):
            response.content_length = sum(len(w) for w in act.writes)  # type: ignore[arg-type]
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        for write in act.writes:
            if request.transport is None or request.transport.is_closing():
                self.client_gone.set()  # the box hung up
                return response
            if isinstance(write, bytes):
                with contextlib.suppress(ConnectionError):
                    await response.write(write)
            else:
                await asyncio.sleep(write)
        if act.drop:
            assert request.transport is not None
            request.transport.close()
            return response
        if act.hang:
            await self._hang(request)
            return response
        with contextlib.suppress(ConnectionError):  # the box may leave first (a cut stream)
            await response.write_eof()
        return response

    async def _hang(self, request: web.Request) -> None:
        try:
            while request.transport is not None and not request.transport.is_closing():
                await asyncio.sleep(0.05)
        finally:
            self.client_gone.set()


def chat_chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
               usage: dict[str, Any] | None = None) -> bytes:  # fmt: skip
    """One chat.completion.chunk event (a usage-only chunk, no choices, when `usage` is given)."""
    choices = [] if usage else [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": choices, **({"usage": usage} if usage else {})}  # fmt: skip
    return sse(chunk)


CHAT_USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def chat_stream(pieces: tuple[str, ...] = ("Hel", "lo", " there"), end: bool = True) -> list[bytes]:
    """A Chat Completions stream: role, content pieces, and with `end` the finish, the usage
    chunk and [DONE]."""
    out = [chat_chunk({"role": "assistant", "content": ""})]
    out += [chat_chunk({"content": piece}) for piece in pieces]
    if end:
        out += [chat_chunk({}, "stop"), chat_chunk(usage=CHAT_USAGE), b"data: [DONE]\n\n"]
    return out


def chat_body(**drop: bool) -> bytes:
    """A chat.completion body; `usage=False` or `choices=False` leaves that part out."""
    body: dict[str, Any] = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m"}
    if drop.get("choices", True):
        body["choices"] = [{"index": 0, "message": {"role": "assistant", "content": "Hello"},
                            "finish_reason": "stop"}]  # fmt: skip
    if drop.get("usage", True):
        body["usage"] = CHAT_USAGE
    return json.dumps(body).encode()


def anthropic_stream(pieces: tuple[str, ...] = ("Hel", "lo"), end: bool = True) -> list[bytes]:
    """A Messages stream: message_start (7 input tokens), one text block, and with `end` its
    stop, message_delta (3 output tokens) and message_stop."""
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [],
               "stop_reason": None, "stop_sequence": None,
               "usage": {"input_tokens": 7, "output_tokens": 1}}  # fmt: skip
    out = [anthropic_event({"type": "message_start", "message": message}),
           anthropic_event({"type": "content_block_start", "index": 0,
                            "content_block": {"type": "text", "text": ""}})]  # fmt: skip
    out += [anthropic_event({"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": piece}})
            for piece in pieces]  # fmt: skip
    if end:
        out += [anthropic_event({"type": "content_block_stop", "index": 0}),
                anthropic_event({"type": "message_delta", "usage": {"output_tokens": 3},
                                 "delta": {"stop_reason": "end_turn", "stop_sequence": None}}),
                anthropic_event({"type": "message_stop"})]  # fmt: skip
    return out


def anthropic_body(**drop: bool) -> bytes:
    """A Messages `message` body; `usage=False` or `content=False` leaves that part out."""
    body: dict[str, Any] = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                            "stop_reason": "end_turn", "stop_sequence": None}  # fmt: skip
    if drop.get("content", True):
        body["content"] = [{"type": "text", "text": "Hello there, this is the answer"}]
    if drop.get("usage", True):
        body["usage"] = {"input_tokens": 7, "output_tokens": 3}
    return json.dumps(body).encode()


def responses_body(**drop: bool) -> bytes:
    """A Responses API `response` body (one message); `usage=False` leaves its usage out."""
    item = {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": "Hello there, this is the answer",
                         "annotations": []}]}  # fmt: skip
    body: dict[str, Any] = {"id": "resp_1", "object": "response", "created_at": 1,
                            "status": "completed", "model": "m", "output": [item]}  # fmt: skip
    if drop.get("usage", True):
        body["usage"] = {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    return json.dumps(body).encode()


@pytest.fixture(scope="package")
def hostile() -> Iterator[HostileUpstream]:
    """One hostile upstream for a suite's package (imported by its conftest.py)."""
    server = HostileUpstream().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_hostile(hostile: HostileUpstream) -> None:
    """Each test starts with no acts queued and nothing recorded."""
    hostile.reset()


def responses_stream(pieces: tuple[str, ...] = ("Hel", "lo")) -> list[bytes]:
    """A Responses API stream (as an `openai` provider serving it natively sends it): created,
    one message of `pieces`, completed with the usage of `responses_body`."""
    body = json.loads(responses_body())
    message = body["output"][0]
    message["content"][0]["text"] = text = "".join(pieces)
    at = {"item_id": message["id"], "output_index": 0, "content_index": 0}
    started = {**body, "status": "in_progress", "output": [], "usage": None}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": started},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {**message, "content": [], "status": "in_progress"}},
        {"type": "response.content_part.added", **at,
         "part": {"type": "output_text", "text": "", "annotations": []}},
        *({"type": "response.output_text.delta", **at, "delta": p} for p in pieces),
        {"type": "response.output_text.done", **at, "text": text},
        {"type": "response.output_item.done", "output_index": 0, "item": message},
        {"type": "response.completed", "response": {**body, "output": [message]}},
    ]  # fmt: skip
    return [sse(event | {"sequence_number": n}, event=event["type"])
            for n, event in enumerate(events)]  # fmt: skip
