"""What serve tells its operator about each request: the access-log line, the request metrics,
the refusal tally, and `GET /metrics` (Prometheus text).

`finish_request` runs once per request when its answer is complete: from the response
middleware for a whole answer, from `api.inference.answer` after a stream's last byte (a
Sanic signal would do both, at 6 µs a request). It writes one access line: method, route
(the route's pattern, never the raw path or query), status, duration, model, user id (the
account's number, not its email), key prefix (`cl_` + 4) and request id; never a key or a body.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from sanic import Request
from sanic.response import HTTPResponse

from codelace_box import metrics
from codelace_box.accounts.keys import KEY_PREFIX
from codelace_box.api.blueprint import Blueprint
from codelace_box.api.common import READ, bearer_token, forwarded_unread
from codelace_box.crypto import mask_tokens
from codelace_box.db.core import aggregate
from codelace_box.db.failures import database_unavailable, is_busy, is_unavailable
from codelace_box.db.offload import run_db_work
from codelace_box.errors import (
    AuthenticationFailed,
    PermissionDenied,
    ServiceUnavailable,
)
from codelace_box.logformat import access_fields_wanted, write_access
from codelace_box.metrics import CONTENT_TYPE, scrape, status_class
from codelace_box.reports.refusals import REFUSED

bp = Blueprint("metrics")
access_log = logging.getLogger("codelace_box.access")
log = logging.getLogger("codelace_box.metrics")
UNMATCHED = "(unmatched)"
ACCESS_FORMAT = "%s %s %s %.1fms model=%s user=%s key=%s request=%s"
HTTP_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
)
MAX_METHOD_CHARS = 100  # of a method that is none of them


def _route(request: Request) -> str:
    """The route's path; a 405's route noted by its error (api/errors.py), else unmatched."""
    route = request.route
    if route is not None:
        return "/" + route.path
    return getattr(request.ctx, "route_path", UNMATCHED)


def _key_prefix(request: Request, auth: Any) -> str | None:
    """The prefix of the key that authenticated the request (only once it did: `auth`, the
    request's identity), as `keyed_auth` kept it from the key presented: the box key among the
    tokens sent (/v1/messages takes x-api-key when Authorization carries another token, whose
    first characters are no business of the log). The headers are not parsed again."""
    if auth is None:
        return None
    prefix: str | None = getattr(request.ctx, "key_prefix", None)
    return prefix if prefix is not None and prefix.startswith(KEY_PREFIX) else None


def finish_request(request: Request, response: Any) -> None:
    """The access line, the request metrics and the refusal tally of a finished request."""
    ctx = request.ctx
    status = int(getattr(response, "status", 0) or 0)
    started = getattr(ctx, "started", None)
    if started is None or status == 408:  # the middleware never ran, or ran only for the 408
        duration = _since_head(request)
    else:
        duration = time.perf_counter() - started
    route = _route(request)
    counting = metrics.counting()  # the thread's state read once, not once a family
    metrics.http_requests.counted_by(counting, (route, str(status), status_class(status))).inc()
    call = getattr(ctx, "call", None)
    if call is not None:
        metrics.total.counted_by(counting, (route,)).observe(duration)
        if call.upstream_sec:
            waited = call.upstream_sec + call.client_sec
            metrics.overhead.counted_by(counting, (route,)).observe(max(duration - waited, 0.0))
    # a refusal is the box's own, before any upstream call (an upstream's 404 or 429 relayed
    # is an upstream error, counted as one with its usage row)
    if status in REFUSED and route != UNMATCHED and not getattr(ctx, "upstream_refused", False):
        code = getattr(ctx, "error_code", None) or str(status)
        metrics.refusals(str(status), code).inc()
        request.app.ctx.refusals.add(status, code)
    if access_log.isEnabledFor(logging.INFO):
        _log_access(request, route, status, duration, call)


def _since_head(request: Request) -> float:
    """How long a request took that Sanic ended before the request middleware ran (a body cut
    short by its client, or too large), or whose middleware ran only for its 408 (a head or
    body late past the timeout): from its head's first byte, which the connection
    (http_guard.py) noted; 0.0 when it did not."""
    began = getattr(request.stream, "head_began", 0.0)
    return max(time.monotonic() - began, 0.0) if began else 0.0


def _log_access(request: Request, route: str, status: int, duration: float, call: Any) -> None:
    """The access line. A text line is its message alone: the JSON fields (a dictionary, the
    duration rounded) are built only for a JSON line or another logging set-up."""
    ctx = request.ctx
    # (or the identity of a disabled account's key, refused: api/common.keyed_auth)
    auth = getattr(ctx, "auth", None) or getattr(ctx, "refused_as", None)
    # a call's model; count_tokens, which makes no call, names its own (api/messages.py), and
    # a refusal before one resolved the body's (note_asked_model: written as a method is)
    model = call.route.id if call is not None else getattr(ctx, "model", None)
    # the account's public id: of the API key, or of the portal's session
    user_id = auth.user_uuid if auth is not None else getattr(ctx, "portal_user", None)
    key_prefix = _key_prefix(request, auth)
    method, request_id = _method_text(request.method), getattr(ctx, "request_id", None)
    # ("%.1f" of the milliseconds writes the text of round(ms, 1), the JSON field's value)
    args = (
        method, route, status, duration * 1000, model or "-", user_id or "-",
        key_prefix or "-", request_id,
    )  # fmt: skip
    message = ACCESS_FORMAT % args
    if not access_fields_wanted() and write_access(access_log, message, None):
        return
    fields = {
        "request_id": request_id, "method": method, "route": route, "status": status,
        "duration_ms": round(duration * 1000, 1), "model": model, "user_id": user_id,
        "key_prefix": key_prefix,
    }  # fmt: skip
    if write_access(access_log, message, fields):
        return
    # Another logging set-up: the record made directly (Logger.info would walk the stack).
    record = access_log.makeRecord(
        access_log.name, logging.INFO, __file__, 0, ACCESS_FORMAT, args, None,
        extra={"access": fields},
    )  # fmt: skip
    access_log.handle(record)


def note_asked_model(request: Request, body: dict[str, Any]) -> None:
    """A call refused before its model resolved (404 model_not_found, a 400 of its body): the
    model its body asked for, for the access line (only on a refusal: nothing a call pays),
    written as a method is (`_log_text`). Only the client's text: a model the box resolved
    (count_tokens', a disabled provider's) is a catalog id, named whole, as a call's is."""
    asked = body.get("model")
    if isinstance(asked, str) and getattr(request.ctx, "model", None) is None:
        request.ctx.model = _log_text(asked)


def _method_text(method: str) -> str:
    """The request's method as the log may show it: to Sanic a method is any run of bytes but
    spaces, so one holding an escape sequence or a carriage return would paint over or forge
    the operator's terminal line; such a method is written with its escapes (`G\\x1b[31mET`).
    Any other than HTTP's own is written with anything key-like in it masked: a key sent as
    the method (`curl -X "$KEY"`) must not reach the log whole."""
    if method in HTTP_METHODS:
        return method
    return _log_text(method)


def _log_text(text: str) -> str:
    """A client's word (a method, a model asked for) as a field of the access line: escapes
    for what is not printable and for blanks (which would shift the line's fields), anything
    key-like masked, cut to MAX_METHOD_CHARS."""
    if not text.isprintable() or " " in text:
        text = text.encode("unicode_escape", "backslashreplace").decode("ascii")
        text = text.replace(" ", "\\x20")
    return mask_tokens(text, MAX_METHOD_CHARS)


def _is_loopback(address: str) -> bool:
    """Whether a client address is the loopback (an IPv4 one as a dual-stack listener on "::"
    sees it too: ::ffff:127.0.0.1)."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return (mapped or ip).is_loopback


def _names_this_box(request: Request) -> bool:
    """Whether the Host a request names is this machine's: localhost (or a name under it), an
    address, server.host, the host of server.public_url or the machine's name; never a name
    of someone else's that resolves here (DNS rebinding, which would hand a web page the
    token-less /metrics)."""
    try:
        host = urlsplit(f"//{request.headers.get('host', '')}").hostname or ""
    except ValueError:  # no host a browser could have asked for ("[x")
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    server = request.app.ctx.config.server
    own = {server.host.lower(), (urlsplit(server.base_url).hostname or "").lower()}
    return host in own or host == socket.gethostname().lower()  # Debian maps it to 127.0.1.1


def _open_holds() -> tuple[int, int]:
    count, nanos = aggregate("SELECT COUNT(*), COALESCE(SUM(amount_nanos), 0) FROM hold")
    return int(count), int(nanos)


@bp.route("/metrics", methods=READ)
async def metrics_text(request: Request) -> HTTPResponse:
    """Prometheus text over every worker: with `metrics.token`, to its bearer; without, only
    to loopback clients (the address after `server.proxies_count`)."""
    settings = request.app.ctx.config.metrics  # off: no route at all (server.py)
    if settings.token:
        presented = (bearer_token(request) or "").encode(errors="surrogateescape")
        if not hmac.compare_digest(presented, settings.token.encode()):
            raise AuthenticationFailed("/metrics needs its token: Authorization: Bearer ...")
    elif not _is_loopback(request.client_ip) or forwarded_unread(request):
        raise PermissionDenied(
            "/metrics answers only loopback clients unless metrics.token is set (a request "
            "forwarded by a proxy is judged by its client's address: set "
            "server.proxies_count)",
            code="metrics_loopback_only",
        )
    elif not _names_this_box(request):
        raise PermissionDenied(
            "/metrics answers a loopback client at a local host name only (localhost, an "
            "address, server.host or public_url's host), not a name a web page may have "
            "rebound to this machine",
            code="metrics_loopback_only",
        )
    try:
        holds: tuple[int, int] | None = await run_db_work(_open_holds)  # off the loop on PG
    except Exception as exc:  # the scrape still answers, saying the database is not reached
        if not (isinstance(exc, ServiceUnavailable) or is_unavailable(exc) or is_busy(exc)):
            raise
        log.warning("/metrics without the open holds: %s", database_unavailable(exc).message)
        holds = None
    return HTTPResponse(scrape(lambda: holds), content_type=CONTENT_TYPE)
