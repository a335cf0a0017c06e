"""The request class of the box's Sanic app: a request's whole body read in a plain loop.

Sanic's `Request.receive_body` (awaited before every handler that does not stream its body)
joins `[data async for data in self.stream]`: an async generator a request, which Python hands
to the event loop's async-generator hooks (an entry added to the loop's WeakSet, dropped again
by a weak reference's callback once the generator is gone). Sanic names `receive_body` as the
method a custom request class overrides; this one reads the same chunks the same way (the
stream's `read()` while it says a body remains, empty reads skipped) without the generator.
"""

from __future__ import annotations

from sanic import Request


class BodyRequest(Request):
    """Sanic's request, its body read without an async generator."""

    __slots__ = ()

    async def receive_body(self) -> None:
        """Receive `body`, if not already received (as Sanic's)."""
        if self.body:
            return
        stream = self.stream
        assert stream is not None, "Sanic reads a body only from a request's stream"
        chunks: list[bytes] = []
        while stream.request_body:
            data = await stream.read()  # type: ignore[attr-defined]  # (Sanic's Http)
            if data:
                chunks.append(data)
        self.body = b"".join(chunks)
