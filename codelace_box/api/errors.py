"""The one error renderer: every error on every route becomes the OpenAI envelope."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

from sanic import Request
from sanic.exceptions import RequestCancelled, SanicException
from sanic.response import HTTPResponse

from codelace_box.api.common import COST_HEADER, cost_header, json_response
from codelace_box.api.portal_security import API_CACHE, add_security_headers, is_portal_path
from codelace_box.crypto import mask_keys
from codelace_box.db import postgres
from codelace_box.db.failures import (
    database_unavailable,
    is_busy,
    is_unavailable,
    written_words,
)
from codelace_box.db.sqlite_file import storage_failed
from codelace_box.errors import (
    CodelaceError,
    RateLimited,
    UnsupportedEncoding,
    UpstreamBusy,
    UpstreamOverloaded,
)
from codelace_box.gateway.dialects import anthropic_error_body

log = logging.getLogger("codelace_box.api")

_SANIC_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "permission_denied"),
    404: ("not_found_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    408: ("invalid_request_error", "request_timeout"),
    413: ("invalid_request_error", "payload_too_large"),
    503: ("api_error", "service_unavailable"),
}


def envelope(status: int, message: str, error_type: str, code: str) -> HTTPResponse:
    """An error response with the OpenAI envelope."""
    body = {"error": {"message": message, "type": error_type, "code": code}}
    return json_response(body, status=status)


# The status of a request whose client closed the connection before its answer (nginx's "client
# closed request"): never sent, the connection is gone; it names the request in the access
# line and the metrics as the client's doing, not the server's error.
CLIENT_CLOSED = 499

# The most of an error's message an answer carries: a message quotes what the client sent (an
# unknown model or field), which may be as long as the body (a 200 KB model name came back as
# a 200 KB error); the start says what is wrong, the rest is cut and counted.
MOST_MESSAGE_CHARS = 2000

# The two routes whose errors have Anthropic's shape (any query string); every other path,
# one under them that is no route (Anthropic's batches API) too, keeps the OpenAI envelope.
ANTHROPIC_ROUTES = frozenset({"/v1/messages", "/v1/messages/count_tokens"})

# Statuses no retry of the same request can change, said in Anthropic's own header: Claude Code
# retries a 401 (ten times over minutes: `claude -p` with an expired or revoked key sat silent
# for as long) unless the answer says `x-should-retry: false`, as Anthropic's API does.
FINAL_STATUSES = frozenset({400, 401, 402, 403, 404, 405, 413, 415})
# 503s that no retry within minutes changes: the model's provider disabled by the operator or
# without a working key, its keys refused by the provider (a key refused though its probe works
# stays in rotation, refused again), the operator's account at the provider out of money. Said as
# overloaded_error (Anthropic's 503), they had Claude Code retry ten times, silent in `claude
# -p`, for over two minutes; an upstream's own overload stays retried. Claude Code reads a 503
# with `x-should-retry: false` as declined, unless its type is an overload.
FINAL_CODES = frozenset({"provider_unavailable", "provider_key_rejected", "provider_out_of_credit"})


def says_final(status: int, code: object, passing: bool) -> bool:
    """Whether an error is one no retry changes (`x-should-retry: false`): a final status, or
    a final 503's code, unless it may pass (a firewall's page)."""
    return not passing and (status in FINAL_STATUSES or code in FINAL_CODES)


def render_error(request: Request, exc: BaseException) -> HTTPResponse:
    """Sanic's handler for every exception: known errors as they are, the rest hidden; on
    the Messages API routes in Anthropic's shape, with the same status and headers. A final
    503 says `x-should-retry: false` on every route (the openai SDK honours it too, and
    otherwise retries a 503 twice), as does a 402 (no retry passes it; the SDKs read the
    header); the Messages routes' final statuses too (Claude Code)."""
    response = _render_openai(request, exc)
    if request is not None:
        _close_if_body_too_large(request)
    passing = getattr(exc, "passing", False)
    status = response.status
    if (status >= 500 or status == 402) and says_final(status, _code_of(exc), passing):
        response.headers["x-should-retry"] = "false"
    path = request.path if request is not None else ""
    if path.rstrip("/") in ANTHROPIC_ROUTES:
        return _as_anthropic(response, final=not passing)
    if request is not None and request.route is None and is_portal_path(request):
        add_security_headers(response, API_CACHE)  # no portal handler ran to add them
    return response


def _code_of(exc: BaseException) -> object:
    """A known error's code (None for the rest)."""
    return exc.code if isinstance(exc, CodelaceError) else None


def _cut(message: str) -> str:
    """The message, cut to MOST_MESSAGE_CHARS (and saying so) when longer."""
    if len(message) <= MOST_MESSAGE_CHARS:
        return message
    cut = len(message) - MOST_MESSAGE_CHARS
    return f"{message[:MOST_MESSAGE_CHARS]}... ({cut} more characters)"


def _close_if_body_too_large(request: Request) -> None:
    """An error answered before the body was read (404, 405): Sanic drains the rest after the
    answer and drops the connection when it is over the limit, but by then the answer said
    keep-alive, so the client's next pooled request met a reset. Say `connection: close`."""
    stream = getattr(request, "stream", None)
    if stream is None or not getattr(stream, "request_body", None):
        return  # no body left unread
    declared = request.headers.get("content-length", "").rstrip(" \t")
    too_large = declared.isdigit() and int(declared) > request.app.config.REQUEST_MAX_SIZE
    if too_large or stream.request_body == "chunked":  # a chunked body's size is unknown
        stream.keep_alive = False


def _as_anthropic(response: HTTPResponse, final: bool = True) -> HTTPResponse:
    """The same error in Anthropic's `{"type": "error", "error": {"type", "message"}}`; one
    not `final` (a firewall's page: it may pass) never says `x-should-retry: false`."""
    try:
        error = json.loads(response.body or b"{}")["error"]
        message, code, param = str(error["message"]), error.get("code"), error.get("param")
    except (ValueError, KeyError, TypeError, AttributeError):
        message, code, param = "error", None, None
    status = response.status
    body = anthropic_error_body(status, message, code, param)
    if code in FINAL_CODES:  # not an overload: Claude Code retries overloaded_error regardless
        body["error"]["type"] = "api_error"
    anthropic = json_response(body, status=status)
    for name in ("retry-after", "allow", "accept-encoding", COST_HEADER, "x-should-retry"):
        if name in response.headers:
            anthropic.headers[name] = response.headers[name]
    if says_final(status, code, not final):
        anthropic.headers["x-should-retry"] = "false"
    return anthropic


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request | None) -> list[str]:
    """The methods the request's path takes, asked of the router one by one: Sanic's 405 for
    a path with a parameter (`/api/v1/auth/key/<key_id>`) names none, and `Allow` went empty."""
    if request is None:
        return []
    allowed = []
    for method in _METHODS:
        try:
            request.app.router.get(request.path, method, None)
        except SanicException:
            continue
        allowed.append(method)
    return allowed


def _note_the_route(request: Request | None, allowed: Iterable[str] | None) -> None:
    """The route a 405's path has, or a 413's refused from its head alone (`Expect:
    100-continue` with a Content-Length past the limit, before routing): Sanic names none, and
    /metrics and the access line count the request under it, not as a path no route serves
    (api/observe.py). Asked of the router only on these refusals."""
    if request is None:
        return
    for method in allowed or ():
        try:
            route = request.app.router.get(request.path, method, None)[0]
        except Exception:  # a label is never worth failing the answer (an unready router)
            continue
        request.ctx.route_path = "/" + route.path
        return


def _v1_hint(request: Request) -> str:
    """' (...)' when a path is a route but for its /v1 (the openai SDK given the box's address
    without /v1), or has /v1 twice (Claude Code given it with /v1); else ''. 404s only."""
    path = request.path
    if path.startswith("/v1/v1/"):
        return (
            " (/v1 twice: a base URL that ends in /v1 where the client adds it; Claude Code and "
            "the anthropic SDK take the box's address without /v1)"
        )
    if path.startswith("/v1/") or not _is_route(request, "/v1" + path):
        return ""
    return " (the API is under /v1: a client's base URL ends in /v1, e.g. https://box/v1)"


def _is_route(request: Request, path: str) -> bool:
    try:
        request.app.router.get(path, request.method, None)
    except SanicException:
        return False
    return True


def _render_sanic(request: Request, exc: SanicException) -> HTTPResponse:
    """Sanic's own refusals (no route, a method, a body or head too large, a timeout) in the
    envelope."""
    status = exc.status_code
    error_type, code = _SANIC_TYPES.get(status, ("invalid_request_error", "invalid_request"))
    if status == 404:
        path = mask_keys(request.path)  # a key pasted into the path is not quoted back whole
        message = f"no route for {request.method} {path}{_v1_hint(request)}"
    elif status == 413:
        head = "header" in str(exc).lower()  # Sanic's limit on the request line + headers
        message = "request headers too large" if head else _body_too_large(request)
        if not head and request is not None and request.route is None:
            _note_the_route(request, (request.method,))  # refused from its head (Expect)
    elif status == 503:
        message = "the server took too long to answer; retry shortly"
    else:  # (a 405's words quote the URL: a key pasted into it is not quoted back whole)
        message = mask_keys(str(exc)) or "bad request"
    response = envelope(status, message, error_type, code)
    if status == 405:
        allowed = getattr(exc, "allowed_methods", None) or _allowed_methods(request)
        _note_the_route(request, allowed)
        # OPTIONS is routed beside the CORS routes for preflights only; a plain OPTIONS is
        # this same 405, so naming it sent a client that tried it to another 405
        response.headers["allow"] = ", ".join(sorted(set(allowed) - {"OPTIONS"}))
    return response


def _body_too_large(request: Request | None) -> str:
    """The 413 of a body: the limit it passed, and the setting that holds it when that is
    server.max_body_bytes (a sign-in route's own smaller limit is no setting's)."""
    if request is None:
        return "request body too large"
    most: int = request.app.config.REQUEST_MAX_SIZE
    stream = getattr(request, "stream", None)
    limit: int = min(getattr(stream, "request_max_size", most), most)
    mib = f"{limit / 2**20:.1f}".removesuffix(".0")  # 1 GiB is "1024", never "1.02e+03"
    size = f"{limit:,} bytes" + (f" = {mib} MiB" if limit >= 2**20 else "")
    if limit < most:
        return f"request body too large: this route takes at most {size}"
    return f"request body too large: this box takes at most {size} (server.max_body_bytes)"


def _render_openai(request: Request, exc: BaseException) -> HTTPResponse:
    if request is not None:  # the access line and the refusal tally name it (api/observe.py)
        request.ctx.error_code = getattr(exc, "code", None)
        request.ctx.upstream_refused = getattr(exc, "from_upstream", False)
    if isinstance(exc, RequestCancelled):  # Sanic's word for a client that left
        message = "the client closed the connection before the answer"
        return envelope(CLIENT_CLOSED, message, "invalid_request_error", "client_closed_request")
    if isinstance(exc, CodelaceError):
        body = exc.envelope()
        body["error"]["message"] = _cut(exc.message)
        response = json_response(body, status=exc.status)
        if exc.cost_nanos is not None:  # a failed call that was charged all the same; the
            # SDKs retry a 5xx on their own unless told not to, each retry charged again
            response.headers[COST_HEADER] = cost_header(exc.cost_nanos)
            response.headers["x-should-retry"] = "false"
        if isinstance(exc, RateLimited | UpstreamBusy | UpstreamOverloaded) and exc.retry_after_sec:
            response.headers["retry-after"] = str(exc.retry_after_sec)
        elif isinstance(exc, UnsupportedEncoding):
            response.headers["accept-encoding"] = "identity"
        return response
    if isinstance(exc, SanicException) and (
        exc.status_code < 500 or exc.status_code in _SANIC_TYPES
    ):
        return _render_sanic(request, exc)
    request_id = getattr(request.ctx, "request_id", "-") if request else "-"
    if is_busy(exc) or is_unavailable(exc):  # a retry, not a bug
        why = _why_unavailable(request, exc)
        log.warning("request %s: the database was unavailable (%s)", request_id, why)
        return _render_openai(request, database_unavailable(exc))
    log.exception("unhandled error in request %s", request_id)
    return envelope(500, f"internal error (request {request_id})", "server_error", "internal_error")


def _why_unavailable(request: Request | None, exc: BaseException) -> object:
    """What the log says of a database a request could not use: its own words for one it cannot
    write (SQLite's "database or disk is full", PostgreSQL's "cannot execute INSERT in a
    read-only transaction"); PostgreSQL's reason for a session it lost or
    was refused (`too many clients already`, a password refused, the server not reached:
    a server that is up but refuses the box is told from an outage; never a password); the
    kind of a lock that stayed taken."""
    if storage_failed(exc) or postgres.is_read_only(exc):
        return written_words(exc)
    if postgres.is_unavailable(exc):
        url = request.app.ctx.config.database.url if request is not None else None
        return postgres.unavailable_reason(exc, url or None)
    return type(exc).__name__
