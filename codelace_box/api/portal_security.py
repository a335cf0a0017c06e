"""The portal's browser rules: the session cookie, the CSRF and Origin checks of state-changing
calls, and the security headers (CSP, framing, caching) on every portal response.

The browser holds an HttpOnly, SameSite=Strict cookie (Secure when the browser speaks https:
`public_url` is https, or a proxy the box trusts, `server.proxies_count`, says so) that
names a server-side session (accounts/sessions.py), its Path the one the box is served under
(server.base_path). Over https it is `__Host-codelace_session` at Path=/, which no other host of
the site can set, and only the exact name is read (Sanic's own lookup
would also take a `__Secure-` one, which any sibling host can set for the whole domain).
A call that changes anything must carry the session's CSRF token in `X-CSRF-Token` and, when
the browser says where it comes from, an `Origin` of the box itself; and a call's body, sign-in
included, must be typed application/json, which no form or beacon of another site can send.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from sanic import Request
from sanic.response import HTTPResponse

from codelace_box.accounts.sessions import NewSession, Session, check_csrf, require_session
from codelace_box.api.reached import DEFAULT_PORTS, reached_origin, reached_scheme
from codelace_box.config import Config
from codelace_box.errors import PermissionDenied

COOKIE = "codelace_session"
HOST_COOKIE = "__Host-" + COOKIE  # its name over https
CSRF_HEADER = "x-csrf-token"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HTML_CACHE = "no-store"  # kept nowhere, not even in the back/forward cache (Back after sign-out)
ASSET_CACHE = "public, max-age=31536000, immutable"
API_CACHE = "no-store"


def secure_cookies(request: Request) -> bool:
    """Whether the cookie gets `Secure`: when the box is reached over https, by its public URL
    or by the scheme of the request (X-Forwarded-Proto is read only from the proxies
    `server.proxies_count` trusts, so a client cannot claim it: reached.py)."""
    config: Config = request.app.ctx.config
    return config.server.base_url.startswith("https://") or reached_scheme(request) == "https"


def set_session_cookie(response: HTTPResponse, new: NewSession, request: Request) -> None:
    """The cookie that carries a new session."""
    _put_cookie(response, request, new.token, new.max_age_sec)


def clear_session_cookie(response: HTTPResponse, request: Request) -> None:
    """Tell the browser to forget the cookie."""
    _put_cookie(response, request, "", 0)


def _put_cookie(response: HTTPResponse, request: Request, value: str, max_age: int) -> None:
    """The cookie's Path is the path the box is served under (server.base_path), except over
    https, where `__Host-` (which no sibling host can plant) requires Path=/."""
    secure = secure_cookies(request)
    config: Config = request.app.ctx.config
    response.add_cookie(
        COOKIE,
        value,
        path="/" if secure else (config.server.base_path or "/"),
        httponly=True,
        samesite="Strict",
        secure=secure,
        max_age=max_age,
        host_prefix=secure,  # __Host-: this host's own cookie, not one a sibling host set
    )


def session_token(request: Request) -> str | None:
    """The value of the session cookie under its exact name, if any."""
    name = HOST_COOKIE if secure_cookies(request) else COOKIE
    values = dict.get(request.cookies, name) or [None]  # dict's get: no prefixed stand-ins
    token = values[0]
    return token or None


def current_session(request: Request) -> Session:
    """The caller's portal session (401 without one); its account is the access line's user.
    A read that names the session it was drawn for (the page sends its CSRF token on reads
    too) is refused when the browser's session is now another one: a tab left open while
    someone else signed in must not draw their data into the page it shows."""
    session = require_session(session_token(request), request.app.ctx.secret_key)
    request.ctx.portal_user = session.user_uuid
    presented = request.headers.get(CSRF_HEADER)
    if presented is not None:
        check_csrf(session, presented)
    return session


def check_origin(request: Request) -> None:
    """403 when a browser says the call comes from another site, or when the call has a body
    not typed JSON: any site's form (text/plain, urlencoded, multipart) or beacon (no type) may
    send one unasked, and a browser that says nothing of where it comes from (no Origin, as
    older ones on a form post) must not sign itself in with an attacker's code."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise PermissionDenied("cross-site requests are refused", code="csrf_failed")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.body and media_type != "application/json":
        raise PermissionDenied(
            "the body must be sent as application/json (a form's or an untyped body is "
            "refused: any site can make a browser send one)",
            code="csrf_failed",
        )
    origin = request.headers.get("origin")
    if origin is None:
        return  # not a browser, or a same-origin GET: SameSite keeps the cookie away anyway
    if origin not in own_origins(request):
        raise PermissionDenied(_refusal(request, origin), code="csrf_failed")


def check_cookie_kept(request: Request) -> None:
    """403 `https_required` for a sign-in from a browser whose page is plain http at a name
    that is not loopback while the cookie is Secure (public_url https): the browser would drop
    the cookie, and the page would go back to its sign-in form without a word, a code spent.
    Browsers keep Secure cookies from loopback pages (a tunnel to the box's port)."""
    origin = request.headers.get("origin", "")
    if not origin.lower().startswith("http://") or not secure_cookies(request):
        return
    host = (urlsplit(origin).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    config: Config = request.app.ctx.config
    where = _origin(config.server.base_url)
    place = where + config.server.base_path if where.startswith("https://") else "its https address"
    raise PermissionDenied(
        "this page is plain http, and the box's sign-in cookie is Secure (server.public_url is "
        f"https), which a browser keeps only from an https page: open the portal at {place}",
        code="https_required",
    )


def _refusal(request: Request, origin: str) -> str:
    """Why an Origin is refused. When the browser says the call is the box's own page's
    (Sec-Fetch-Site, which no page can set), the box has its own address wrong, as behind a
    TLS proxy with neither setting made, or a proxy on another port that does not say it:
    say which addresses it took and what to set."""
    refused = f"requests from {origin[:100]} are refused"
    if request.headers.get("sec-fetch-site") != "same-origin":
        return refused
    config: Config = request.app.ctx.config
    own, reached = _origin(config.server.base_url), reached_origin(request)
    taken = own if reached in (None, own) else f"{own} or, as reached, {reached}"
    return (
        f"{refused}: this box takes its own address to be {taken}; behind a reverse proxy, its "
        "operator sets server.public_url to the address people use (or server.proxies_count, "
        "to read the proxy's X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Port)"
    )


def own_origins(request: Request) -> set[str]:
    """The origins the box's own pages have: its public URL's, and the one the request names
    (its Host, or a trusted proxy's forwarded ones: reached.py)."""
    config: Config = request.app.ctx.config
    reached = reached_origin(request)
    return {_origin(config.server.base_url)} | ({reached} if reached else set())


def refuse_other_sites_pages(request: Request) -> None:
    """403 for what a page of another site makes a browser send (a form, a no-cors fetch): an
    Origin of the web (http, https, or `null`) not the box's own, or, without Origin, a
    Sec-Fetch-Site of another site. A program sends neither; a browser extension or a desktop
    app's web view (an origin of its own scheme) is a client the user installed: they pass. So
    does what the browser itself calls same-origin (no page can forge Sec-Fetch-Site): a web
    app at a proxy's address that forwards /api/ to the box, whose origin the box cannot know."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site in ("same-origin", "none"):
        return
    origin = request.headers.get("origin")
    if origin is None:
        if fetch_site in ("cross-site", "same-site"):
            raise PermissionDenied("cross-site requests are refused", code="csrf_failed")
        return
    web = origin == "null" or origin.lower().startswith(("http://", "https://"))
    if web and origin not in own_origins(request):
        raise PermissionDenied(f"requests from {origin[:100]} are refused", code="csrf_failed")


def _origin(url: str) -> str:
    """The origin a browser sends for pages under `url`: scheme and host lower-case, the
    scheme's default port left out (a public_url may spell them otherwise)."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6
    try:
        port = parts.port
    except ValueError:  # no port a browser could be at: the URL as written
        return f"{scheme}://{parts.netloc.lower()}"
    return f"{scheme}://{host}" + ("" if port in (None, DEFAULT_PORTS.get(scheme)) else f":{port}")


def changing_session(request: Request) -> Session:
    """The session of a state-changing call, after the Origin and CSRF checks (the token is
    required here; current_session checks it only when sent)."""
    check_origin(request)
    session = current_session(request)
    check_csrf(session, request.headers.get(CSRF_HEADER))
    return session


def add_security_headers(response: HTTPResponse, cache_control: str) -> None:
    """The headers every portal response carries."""
    headers = response.headers
    headers.setdefault("content-security-policy", CSP)
    headers["x-frame-options"] = "DENY"
    headers["x-content-type-options"] = "nosniff"
    headers["referrer-policy"] = "same-origin"
    headers["cross-origin-opener-policy"] = "same-origin"
    headers["cache-control"] = cache_control


PAGE_PATHS = frozenset({"/", "/signin", "/keys", "/usage", "/billing", "/connect"})


def is_portal_path(request: Request) -> bool:
    """Whether a path is the served portal's (a page, or under /portal/): a 404 or 405 there,
    answered by the router before any portal handler, still carries the portal's headers."""
    path = request.path
    if not (path.startswith("/portal/") or path.rstrip("/") in PAGE_PATHS or path == "/"):
        return False
    config: Config | None = getattr(request.app.ctx, "config", None)
    return config is not None and config.portal.enabled


async def portal_headers(request: Request, response: HTTPResponse) -> None:
    """Security and cache headers on every portal response, errors included (registered on
    the portal's blueprints only: the inference routes pay nothing for it)."""
    path = request.path
    if path.startswith("/portal/assets/") and response.status == 200:
        add_security_headers(response, ASSET_CACHE)
    elif path.startswith("/portal/"):
        add_security_headers(response, API_CACHE)
    else:
        add_security_headers(response, HTML_CACHE)
