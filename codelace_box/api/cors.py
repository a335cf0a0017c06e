"""CORS for the key-authenticated API, so a web page may call the box with a user's key (web
chat UIs, the openai SDK's `dangerouslyAllowBrowser`, Anthropic's direct browser access).

It covers the inference routes (`/v1/*`) and the Bearer-key routes under `/api/v1/`; never the
portal (cookie sessions), `/metrics`, `/healthz`, the sign-in codes or the Stripe webhook.
`server.cors_allow_origins` lists the origins (`*`: all; empty: off). A preflight (OPTIONS
with Origin and Access-Control-Request-Method) from an allowed origin gets 204; any other
OPTIONS stays the 405 envelope. An answer to a request with an allowed Origin carries
Access-Control-Allow-Origin and -Expose-Headers, errors included (the response hook in
server.py). A request without Origin (every client but a browser) pays one header lookup.
No credentials are ever allowed: these routes take keys, not cookies.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from sanic import Request, Sanic
from sanic.exceptions import MethodNotAllowed
from sanic.response import HTTPResponse

from codelace_box.api.common import BoxResponse

# Every path CORS applies to starts with one of these (`str.startswith` takes the tuple in C)
CORS_PATHS = (
    "/v1/",
    "/api/v1/auth/me",
    "/api/v1/auth/key",
    "/api/v1/customer/",
    "/api/v1/stripe/checkout",
    "/api/v1/stripe/setup",
    "/api/v1/public/",
)
# The request headers the OpenAI and Anthropic SDKs (and chat UIs) send, besides x-stainless-*
ALLOWED_HEADERS = frozenset(
    (
        "authorization",
        "content-type",
        "x-api-key",
        "anthropic-version",
        "anthropic-beta",
        "anthropic-dangerous-direct-browser-access",
        "openai-beta",
        "openai-organization",
        "openai-project",
        "idempotency-key",
    )
)
STAINLESS = "x-stainless-"  # the SDKs' telemetry headers: x-stainless-os, -retry-count, ...
STAINLESS_KNOWN = (
    "x-stainless-arch, x-stainless-lang, x-stainless-os, x-stainless-package-version, "
    "x-stainless-retry-count, x-stainless-runtime, x-stainless-runtime-version, "
    "x-stainless-timeout, x-stainless-helper-method"
)
EXPOSED = "x-request-id, x-codelace-cost-usd, retry-after, request-id, x-should-retry"
MAX_AGE = "7200"  # seconds a browser may reuse a preflight (Chromium's own ceiling)
PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


class CorsPolicy:
    """Which origins may call: every one (`*`) or those listed."""

    __slots__ = ("any_origin", "origins")

    def __init__(self, origins: list[str]) -> None:
        self.any_origin = "*" in origins
        self.origins = frozenset(origins)

    def allow_origin(self, origin: str) -> str | None:
        """The Access-Control-Allow-Origin for this Origin header, None when not allowed."""
        if self.any_origin:
            return "*"
        return origin if origin in self.origins else None


def install_cors(app: Sanic, origins: list[str]) -> None:
    """Keep the policy on the app and add an OPTIONS route beside every route CORS covers
    (call after the blueprints: their methods are read off the router). Empty: no CORS."""
    app.ctx.cors = CorsPolicy(origins) if origins else None
    if not origins:
        return
    methods: dict[str, set[str]] = {}
    for route in app.router.routes:
        uri = "/" + route.path
        if uri.startswith(CORS_PATHS):  # the Stripe webhook's path is none of them
            methods.setdefault(route.uri, set()).update(route.methods)
    for number, (uri, taken) in enumerate(sorted(methods.items())):
        handler = _preflight_handler(", ".join(sorted(taken)))
        app.add_route(handler, uri, methods=["OPTIONS"], name=f"cors_preflight_{number}")


def _preflight_handler(methods: str) -> Callable[..., Coroutine[Any, Any, HTTPResponse]]:
    """The OPTIONS handler of one route, whose methods are `methods` ("GET, HEAD")."""

    async def preflight(request: Request, **_: Any) -> HTTPResponse:
        response = preflight_response(request, methods)
        if response is None:  # not a preflight, or not one we allow: as before CORS
            raise MethodNotAllowed(
                f"Method OPTIONS not allowed for URL {request.path}", method="OPTIONS"
            )
        return response

    return preflight


def preflight_response(request: Request, methods: str) -> HTTPResponse | None:
    """204 for a preflight from an allowed origin asking for one of the route's methods."""
    policy: CorsPolicy | None = request.app.ctx.cors
    origin = request.headers.get("origin")
    wanted = request.headers.get("access-control-request-method", "").strip().upper()
    if policy is None or origin is None or not wanted or wanted not in methods.split(", "):
        return None
    allow_origin = policy.allow_origin(origin)
    if allow_origin is None:
        return None
    headers = {
        "access-control-allow-origin": allow_origin,
        "access-control-allow-methods": methods,
        "access-control-allow-headers": allowed_request_headers(request),
        "access-control-max-age": MAX_AGE,
        "vary": PREFLIGHT_VARY,
    }
    return BoxResponse(status=204, headers=headers)


def allowed_request_headers(request: Request) -> str:
    """The headers a preflight asked for that we take (a browser refuses the call when one it
    asked for is missing), or every one we take when it asked for none."""
    asked = request.headers.get("access-control-request-headers")
    if asked is None:
        return ", ".join(sorted(ALLOWED_HEADERS)) + ", " + STAINLESS_KNOWN
    names = (name.strip().lower() for name in asked.split(","))
    return ", ".join(n for n in names if n in ALLOWED_HEADERS or n.startswith(STAINLESS))


def add_cors_headers(request: Request, response: HTTPResponse, origin: str) -> None:
    """On an answer to a request that had an Origin header: the CORS headers a browser needs
    to hand the answer (or the error) to the page, when the path and the origin are allowed."""
    policy: CorsPolicy | None = request.app.ctx.cors
    if policy is None or not request.path.startswith(CORS_PATHS):
        return
    headers = response.headers
    if "access-control-allow-origin" in headers:
        return  # a preflight's own answer
    allow_origin = policy.allow_origin(origin)
    if allow_origin is None:
        return
    headers["access-control-allow-origin"] = allow_origin
    headers["access-control-expose-headers"] = EXPOSED
    if not policy.any_origin:  # the answer names the origin: a cache must key on it
        vary = headers.get("vary")
        headers["vary"] = f"{vary}, Origin" if vary else "Origin"
