"""Request bodies are read only for clients the box knows. A body is held in memory whole (up to
server.max_body_bytes) and Sanic reads it before any handler runs: so anyone on the network
could hold that much of the box's memory per connection, without a key, and a few hundred
connections took gigabytes. Before a routed request's body is read: an inference
route looks at its API key (401 without reading the body; the handler reuses the answer), and
a route that takes no API key (sign-in, the portal, whose bodies are small by nature) reads at
most SMALL_BODY_BYTES (413 past it), the Stripe webhook at most WEBHOOK_BODY_BYTES: a dispute's
events carry its evidence, up to 150,000 characters of text, some 900 KB escaped."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sanic import Request, Sanic

from codelace_box.accounts.keys import AuthContext
from codelace_box.api.common import require_auth
from codelace_box.api.messages import messages_auth

SMALL_BODY_BYTES = 256 * 1024  # a sign-in or a key's settings fit many times
WEBHOOK_BODY_BYTES = 1024 * 1024  # Stripe's largest events: a dispute with all its evidence
WEBHOOK_ROUTE = "api/v1/stripe/webhook"

# The routes a body is read for only once their API key is known: how each reads its key.
KEYED_ROUTES: dict[str, Callable[[Request], Awaitable[AuthContext]]] = {
    "v1/chat/completions": require_auth,
    "v1/responses": require_auth,
    "v1/responses/compact": require_auth,
    "v1/responses/<response_id:str>": require_auth,  # the stored-response routes: a 404 after it
    "v1/responses/<response_id:str>/cancel": require_auth,
    "v1/responses/<response_id:str>/input_items": require_auth,
    "v1/embeddings": require_auth,
    "v1/messages": messages_auth,
    "v1/messages/count_tokens": messages_auth,
}


async def before_the_body(request: Request) -> None:
    """Run as a routed request's body is first read (http_guard.py's GuardedHttp.read): the
    key of a keyed route checked (its errors raised), or the body limit of any other lowered.
    (`request_bytes`: the length a body declared, 0 for a chunked one.)"""
    stream, route = request.stream, request.route
    if stream is None or route is None:
        return
    if getattr(stream, "request_bytes", 0) > stream.request_max_size:
        return  # a body declared over the limit: its 413 comes first, reading nothing
    check = KEYED_ROUTES.get(route.path)
    if check is not None:
        await check(request)
    else:
        small = WEBHOOK_BODY_BYTES if route.path == WEBHOOK_ROUTE else SMALL_BODY_BYTES
        stream.request_max_size = min(stream.request_max_size, small)


def install(app: Sanic) -> None:
    """Run `before_the_body` before any request body is read (a Sanic signal would cost every
    request about 10 us; this costs only a request with a body, almost nothing)."""
    app.ctx.before_body = before_the_body
