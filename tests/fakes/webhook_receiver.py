"""A Slack-style incoming webhook on 127.0.0.1: records every JSON POST it receives.

hook = WebhookReceiver().start()
hook.url        # "http://127.0.0.1:PORT/services/T000/B000/XXXX"
hook.texts()    # the "text" of every message received, in order
hook.refuse_with = 500   # answer that status (a webhook down) and keep nothing; None: 200 again
hook.refused    # how many messages were refused so
hook.huge = True     # answer 200 with a body of 256 MiB
hook.hold()          # keep each message and hold its answer; hook.release(): answer them
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer


class WebhookReceiver(LoopbackServer):
    """Answers 200 "ok" as Slack does, and keeps each body."""

    label = "webhook receiver"
    path = "/services/T000/B000/XXXX"

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[dict[str, Any]] = []
        self.refuse_with: int | None = None
        self.huge = False
        self.refused = 0
        self._lock = threading.Lock()
        self._answering = threading.Event()
        self._answering.set()

    def hold(self) -> None:
        """Keep each message from now on but answer none until `release()`."""
        self._answering.clear()

    def release(self) -> None:
        self._answering.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(self.path, self._receive)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return web.Response(status=400, text="invalid_payload")
        body = await request.json()
        if self.huge:
            with self._lock:
                self.bodies.append(body)
            return await self._huge(request)
        if self.refuse_with is not None:
            self.refused += 1
            return web.Response(status=self.refuse_with, text="service unavailable")
        with self._lock:
            self.bodies.append(body)
        while not self._answering.is_set():
            await asyncio.sleep(0.02)
        return web.Response(text="ok")

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        answer = web.StreamResponse()
        await answer.prepare(request)
        chunk = b"ok" * (1 << 19)
        for _ in range(256):
            await answer.write(chunk)
        return answer

    def texts(self) -> list[str]:
        with self._lock:
            return [str(b.get("text", "")) for b in self.bodies]
