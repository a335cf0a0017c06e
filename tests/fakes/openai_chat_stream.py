"""The fake OpenAI's streamed and scripted Chat Completions answers (openai_upstream.py): a
stream as api.openai.com sends it (role chunk, content or tool-call deltas, finish chunk,
`"usage": null` on every chunk with include_usage and a final usage chunk, an `obfuscation`
pad, `[DONE]`), its scripted failures (dropped, an error event, hanging, endless), and a `raw`
body written byte for byte."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.openai_upstream import FakeOpenAI, Reply

FINGERPRINT = "fp_fake0c1a2b"


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


async def raw_reply(fake: FakeOpenAI, request: web.Request, reply: Reply) -> web.StreamResponse:
    """A scripted body, byte for byte (what real servers send beyond the happy path); a
    reader that closes the connection midway sets `client_gone`."""
    assert reply.raw is not None
    headers = {"content-type": reply.content_type, **reply.headers}
    response = web.StreamResponse(status=reply.status, headers=headers)
    if reply.gzip:
        response.enable_compression(web.ContentCoding.gzip)
    await response.prepare(request)
    try:
        for index, part in enumerate(reply.raw):
            if index == reply.pause_after:
                fake.paused.set()
                while not fake.resume.is_set():
                    await asyncio.sleep(0.01)
            await response.write(part)
            if reply.piece_delay:
                await asyncio.sleep(reply.piece_delay)
        await response.write_eof()
    except ConnectionError:
        fake.client_gone.set()
    return response


async def stream_reply(
    fake: FakeOpenAI, request: web.Request, body: dict[str, Any], reply: Reply
) -> web.StreamResponse:
    """The reply as a `chat.completion.chunk` stream, with its scripted failures."""
    response = web.StreamResponse(
        headers={"content-type": "text/event-stream; charset=utf-8", **reply.headers}
    )
    if reply.gzip:
        response.enable_compression(web.ContentCoding.gzip)
    await response.prepare(request)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base = {
        "id": "chatcmpl-" + secrets.token_hex(12),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body["model"],
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }
    for index, delta in enumerate(deltas(reply)):
        if reply.drop_after is not None and index >= reply.drop_after:
            assert request.transport is not None
            request.transport.close()
            return response
        if reply.error_after is not None and index >= reply.error_after:
            error = {"message": "The model had an error mid-stream.", "type": "server_error"}
            await response.write(b"data: " + compact({"error": error}) + b"\n\n")
            return response
        if reply.hang_after is not None and index >= reply.hang_after:
            await wait_until_gone(fake, request)
            return response
        await response.write(_event(base, delta, include_usage))
        if reply.piece_delay:
            await asyncio.sleep(reply.piece_delay)
    if reply.endless is not None:
        await _endless(fake, request, response, base, reply)
        return response
    await _finish(fake, response, base, body, reply, include_usage)
    return response


async def _finish(
    fake: FakeOpenAI,
    response: web.StreamResponse,
    base: dict[str, Any],
    body: dict[str, Any],
    reply: Reply,
    include_usage: bool,
) -> None:
    """The finish chunk, the usage chunk if asked for, `[DONE]`."""
    if reply.tail_delay:
        await asyncio.sleep(reply.tail_delay)
    finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
    choice = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}
    await response.write(_chunk(base, choice, include_usage))
    if include_usage and reply.usage:
        chunk = base | {"choices": [], "usage": fake.usage(body, reply)}
        await response.write(b"data: " + compact(_pad(chunk)) + b"\n\n")
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()


async def _endless(
    fake: FakeOpenAI,
    request: web.Request,
    response: web.StreamResponse,
    base: dict[str, Any],
    reply: Reply,
) -> None:
    """Content events until the client leaves (or `endless_limit` of them), never a finish."""
    for index in range(reply.endless_limit):
        transport = request.transport
        if transport is None or transport.is_closing():
            fake.client_gone.set()
            return
        try:
            await response.write(_event(base, {"content": reply.endless}, False))
        except (ConnectionError, RuntimeError):
            fake.client_gone.set()
            return
        if index % 50 == 49:
            await asyncio.sleep(0.001)


def deltas(reply: Reply) -> list[dict[str, Any]]:
    """The stream's deltas: the role, then the text pieces or the tool calls in 8-byte cuts."""
    first: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
    if not reply.tool_calls:
        return [first] + [{"content": piece} for piece in reply.stream_pieces()]
    first["content"] = None
    found = [first]
    for i, call in enumerate(reply.tool_calls):
        start = {"index": i, "id": f"call_{i}", "type": "function"}
        start["function"] = {"name": call["name"], "arguments": ""}
        found.append({"tool_calls": [start]})
        args = call["arguments"]
        for cut in range(0, len(args), 8):
            piece = {"index": i, "function": {"arguments": args[cut : cut + 8]}}
            found.append({"tool_calls": [piece]})
    return found


def _event(base: dict[str, Any], delta: dict[str, Any], usage: bool) -> bytes:
    return _chunk(
        base, {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}, usage
    )


def _chunk(base: dict[str, Any], choice: dict[str, Any], usage: bool) -> bytes:
    chunk = base | {"choices": [choice]}
    if usage:
        chunk["usage"] = None
    return b"data: " + compact(_pad(chunk)) + b"\n\n"


def _pad(chunk: dict[str, Any]) -> dict[str, Any]:
    return chunk | {"obfuscation": secrets.token_urlsafe(6)}


async def wait_until_gone(fake: FakeOpenAI, request: web.Request) -> None:
    """Silence until the reader closes the connection (`client_gone`), or 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            fake.client_gone.set()
            return
        await asyncio.sleep(0.02)
