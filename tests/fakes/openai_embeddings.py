"""The fake OpenAI's `POST /v1/embeddings`: checks the key, model and input as the real API
does, then (after its `delay_before`, or hanging up) answers the next scripted Reply:
`prompt_tokens` as the usage (none when `usage=False`), a status and error body, a `raw` body,
or one small deterministic vector per input: a list of floats, or with `encoding_format:
"base64"` (what the openai SDKs ask for by default) the float32 little-endian bytes in base64,
as the real API sends them."""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.openai_chat_stream import raw_reply

if TYPE_CHECKING:
    from tests.fakes.openai_upstream import FakeOpenAI

DIMENSIONS = 4


def _error(status: int, message: str, kind: str, code: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def _inputs(value: Any) -> list[Any] | None:
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, int) for v in value):
            return [value]
        return value
    return None


def vector(index: int) -> list[float]:
    """The embedding the fake gives the input at `index`."""
    return [round(0.1 * (index + 1) * (d + 1), 3) for d in range(DIMENSIONS)]


def as_float32(values: list[float]) -> list[float]:
    """`values` as a client reads them back from base64 (float32)."""
    return list(struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values)))


def _encoded(values: list[float], encoding: Any) -> list[float] | str:
    if encoding != "base64":
        return values
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")


async def embeddings(fake: FakeOpenAI, request: web.Request) -> web.StreamResponse:
    """Answer one embeddings request."""
    recorded = await fake.record(request)
    body: Any = recorded.body
    if not recorded.api_key or recorded.api_key in fake.key_status:  # refused as on chat
        return fake._refuse(recorded.headers, body) or web.Response(status=500)
    inputs = _inputs(body.get("input")) if isinstance(body, dict) else None
    if inputs is None or not isinstance(body.get("model"), str):
        return _error(400, "'input' and 'model' are required", "invalid_request_error")
    reply = fake._next_reply(body)
    if reply.delay_before:
        await asyncio.sleep(reply.delay_before)
    if reply.hang_up and request.transport is not None:
        request.transport.close()
        return web.Response()  # never sent: the connection is gone
    if reply.raw is not None:
        return await raw_reply(fake, request, reply)
    if reply.status != 200:
        error = reply.error or {"message": "The server had an error", "type": "server_error"}
        return web.Response(status=reply.status, text=json.dumps({"error": error}),
                            content_type="application/json")  # fmt: skip
    encoding = body.get("encoding_format")
    data = [
        {"object": "embedding", "index": i, "embedding": _encoded(vector(i), encoding)}
        for i in range(len(inputs))
    ]
    answer: dict[str, Any] = {"object": "list", "data": data, "model": body["model"]}
    if reply.usage:
        answer["usage"] = {
            "prompt_tokens": reply.prompt_tokens,
            "total_tokens": reply.prompt_tokens,
        }
    return web.json_response(answer)
