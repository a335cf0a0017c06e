"""The stack's floor, for `make bench-peers`: a bare Sanic server relaying through aiohttp.

It takes a chat completion, sets the upstream's model name and relays it with an aiohttp
session set up as the box's (gateway/client.py), answering the upstream's JSON or passing its
stream's bytes on; nothing else: no key, no limits, no database, no metering, no metrics, no
access line. What it adds at 1 concurrent is what the chosen stack (Sanic, aiohttp, orjson,
uvloop, one process) costs before the box does any of its own work; the box's own share of
its added latency is the difference. Run: `python -m bench.floor --port P --upstream URL`.
"""

from __future__ import annotations

import argparse

import aiohttp
import orjson
from sanic import Request, Sanic
from sanic.response import HTTPResponse, json, raw

UPSTREAM_MODEL = "gpt-bench"


def create_app(upstream_url: str) -> Sanic:
    """The relay, to `upstream_url` (the fake upstream's chat completions)."""
    app = Sanic("codelace_floor")
    app.config.MOTD = False

    @app.before_server_start
    async def open_session(app: Sanic) -> None:
        app.ctx.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=600),
            skip_auto_headers=("User-Agent",),
            raise_for_status=False,
        )

    @app.after_server_stop
    async def close_session(app: Sanic) -> None:
        await app.ctx.session.close()

    @app.get("/healthz")
    async def healthz(request: Request) -> HTTPResponse:
        return json({"status": "ok"})

    @app.post("/v1/chat/completions")
    async def relay(request: Request) -> HTTPResponse | None:
        body = orjson.loads(request.body)
        body["model"] = UPSTREAM_MODEL
        headers = {"content-type": "application/json", "accept-encoding": "identity"}
        session: aiohttp.ClientSession = request.app.ctx.session
        async with session.post(upstream_url, data=orjson.dumps(body), headers=headers) as up:
            if not body.get("stream"):
                return raw(await up.read(), status=up.status, content_type="application/json")
            out = await request.respond(content_type="text/event-stream; charset=utf-8")
            async for chunk in up.content.iter_any():
                await out.send(chunk)
            await out.eof()
        return None

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the upstream's chat completions URL")
    args = parser.parse_args()
    app = create_app(args.upstream)
    app.run(host="127.0.0.1", port=args.port, single_process=True, access_log=False)


if __name__ == "__main__":
    main()
