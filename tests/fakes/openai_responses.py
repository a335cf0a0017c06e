"""The fake OpenAI's `POST /v1/responses` (OpenAI serves the Responses API natively): checks the
key, model and input, then answers the next scripted Reply (after its `delay_before`) as a
`response` object, or as a stream in OpenAI's documented event order (created, in_progress, the
message item with its text deltas, the .done events, completed with usage), `sequence_number`s
from 0. A stream honours the Reply's `piece_delay` (after each text delta), `hang_after` (silent
after N text deltas until the reader leaves), `drop_after` (the connection cut after N text
deltas) and `endless` (after the text, that delta again and again, never a finish); a reader
that leaves midway sets `client_gone`."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.openai_chat_stream import raw_reply, wait_until_gone

if TYPE_CHECKING:
    from tests.fakes.openai_upstream import FakeOpenAI, Reply


def _error(status: int, message: str, kind: str = "invalid_request_error") -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def _usage(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    out = reply.completion_tokens
    if out is None:
        out = len(reply.stream_pieces())
    return {
        "input_tokens": reply.prompt_tokens,
        "input_tokens_details": {"cached_tokens": reply.cached_tokens},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
        "total_tokens": reply.prompt_tokens + out,
    }


def _message(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": []}] if text else []
    return {"id": item_id, "type": "message", "status": status, "role": "assistant",
            "content": content}  # fmt: skip


def _response(body: dict[str, Any], rid: str, status: str, output: list[Any], usage: Any) -> Any:
    return {"id": rid, "object": "response", "created_at": int(time.time()), "status": status,
            "model": body["model"], "output": output, "usage": usage, "error": None,
            "incomplete_details": None, "tools": [], "tool_choice": "auto",
            "parallel_tool_calls": True}  # fmt: skip


async def responses(fake: FakeOpenAI, request: web.Request) -> web.StreamResponse:
    """Answer one Responses request."""
    recorded = await fake.record(request)
    body: Any = recorded.body
    if not recorded.api_key:
        return _error(401, "You didn't provide an API key.")
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("model"), str)
        or not body.get("input")
    ):
        return _error(400, "'model' and 'input' are required")
    reply = fake._next_reply(body)
    if reply.delay_before:
        await asyncio.sleep(reply.delay_before)
    if reply.raw is not None:
        return await raw_reply(fake, request, reply)
    if reply.status != 200:
        return _error(reply.status, (reply.error or {}).get("message", "The server had an error"))
    rid, mid = f"resp_{secrets.token_hex(8)}", f"msg_{secrets.token_hex(8)}"
    final = _message(mid, reply.content, "completed")
    if not body.get("stream"):
        return web.json_response(_response(body, rid, "completed", [final], _usage(body, reply)))
    return await _stream(fake, request, body, reply, rid, final)


async def _stream(
    fake: FakeOpenAI,
    request: web.Request,
    body: dict[str, Any],
    reply: Reply,
    rid: str,
    final: dict[str, Any],
) -> web.StreamResponse:
    mid = final["id"]
    part = {"type": "output_text", "text": "", "annotations": []}
    start = _response(body, rid, "in_progress", [], None)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": start},
        {"type": "response.in_progress", "response": start},
        {"type": "response.output_item.added", "output_index": 0,
         "item": _message(mid, "", "in_progress")},
        {"type": "response.content_part.added", "item_id": mid, "output_index": 0,
         "content_index": 0, "part": part},
    ]  # fmt: skip
    where = {"item_id": mid, "output_index": 0, "content_index": 0}
    for piece in reply.stream_pieces():
        events.append({"type": "response.output_text.delta", **where, "delta": piece})
    if reply.endless is not None:  # never finishes: the reader must hang up (or the limit)
        endless = {"type": "response.output_text.delta", **where, "delta": reply.endless}
        events += [dict(endless) for _ in range(reply.endless_limit)]
        return await _send(fake, request, events, reply)
    events += [
        {"type": "response.output_text.done", **where, "text": reply.content},
        {"type": "response.content_part.done", **where, "part": final["content"][0]},
        {"type": "response.output_item.done", "output_index": 0, "item": final},
        {"type": "response.completed",
         "response": _response(body, rid, "completed", [final], _usage(body, reply))},
    ]  # fmt: skip
    return await _send(fake, request, events, reply)


async def _send(
    fake: FakeOpenAI, request: web.Request, events: list[dict[str, Any]], reply: Reply
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream; charset=utf-8"})
    await response.prepare(request)
    try:
        await _write(fake, request, response, events, reply)
    except ConnectionError:
        fake.client_gone.set()
    return response


async def _write(
    fake: FakeOpenAI,
    request: web.Request,
    response: web.StreamResponse,
    events: list[dict[str, Any]],
    reply: Reply,
) -> None:
    """The events in order, paced and cut as the Reply scripts it."""
    deltas = 0
    for number, event in enumerate(events):
        is_delta = event["type"] == "response.output_text.delta"
        if is_delta and reply.drop_after is not None and deltas >= reply.drop_after:
            assert request.transport is not None
            request.transport.close()
            return
        if is_delta and reply.hang_after is not None and deltas >= reply.hang_after:
            await wait_until_gone(fake, request)
            return
        if request.transport is None or request.transport.is_closing():
            fake.client_gone.set()  # the reader hung up
            return
        event["sequence_number"] = number
        await response.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())
        if is_delta:
            deltas += 1
            if reply.piece_delay and deltas <= len(reply.stream_pieces()):  # (endless: none)
                await asyncio.sleep(reply.piece_delay)
    if reply.endless is None:
        await response.write_eof()
