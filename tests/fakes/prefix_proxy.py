"""A reverse proxy on 127.0.0.1 that serves the box under a path and strips it, as nginx's
`location /gateway/ { proxy_pass http://127.0.0.1:8080/; }` does: a request for
`/gateway/keys` reaches the box as `/keys` (with nginx's default Host, the box's own address),
and anything outside the path is a 404 the box never sees, kept in `missed`.

proxy = PrefixStrippingProxy("/gateway").start()
proxy.target = box.url      # where to send what it takes in
proxy.url                   # "http://127.0.0.1:PORT/gateway"
"""

from __future__ import annotations

from aiohttp import ClientSession, web
from multidict import CIMultiDict

from tests.fakes.loopback import LoopbackServer

# Hop-by-hop headers, and those the client side recomputes for the body it sends on
DROPPED = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer",
     "proxy-connection", "content-length", "host"}
)  # fmt: skip


class PrefixStrippingProxy(LoopbackServer):
    """Passes requests under `prefix` on to `target` without it; every other one is a 404."""

    label = "prefix-stripping proxy"

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix
        self.target = ""
        self.missed: list[str] = []  # the paths asked for outside the prefix

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._pass_on)
        return app

    async def _pass_on(self, request: web.Request) -> web.StreamResponse:
        if not request.path.startswith(self.prefix + "/"):
            self.missed.append(request.path_qs)
            return web.Response(status=404, text="not under the proxy's path")
        path = request.raw_path[len(self.prefix) :]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in DROPPED}
        async with (
            ClientSession(auto_decompress=False) as session,
            session.request(
                request.method,
                self.target + path,
                headers=headers,
                data=await request.read(),
                allow_redirects=False,
            ) as answer,
        ):
            body = await answer.read()
            kept = CIMultiDict(
                (k, v) for k, v in answer.headers.items() if k.lower() not in DROPPED
            )
            return web.Response(status=answer.status, body=body, headers=kept)
