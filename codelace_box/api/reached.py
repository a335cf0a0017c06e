"""The address a browser reached the box at, for the links the box gives it (the portal's
connect snippets, Stripe's return links) and the origin its pages have.

`server.public_url` wins where set (reached_url). Else the request's scheme and Host, or what
the proxies the box trusts (`server.proxies_count`) say of them: Sanic reads X-Forwarded-Proto,
-Host and -Port only when its PROXIES_COUNT found the client's address in X-Forwarded-For
(`request.forwarded`). Chained proxies each add what they were reached at
(`a.example, b.example`): the entry the proxy count points at is taken, as Sanic takes the
client's address from X-Forwarded-For, or the first when there are fewer entries than proxies.
A forwarded host that is no host[:port] (a name, `_` allowed as browsers allow it in Windows'
and Docker Compose's names, or a bracketed IPv6 address) gives the Host the request reached; a
port is written only when it is not the scheme's own.
"""

from __future__ import annotations

import re

from sanic import Request

from codelace_box.config import Config

DEFAULT_PORTS = {"http": 80, "https": 443}
HostPort = tuple[str, int | None]
# Sanic's parse_host's, with `_` in names (its own refuses `dev_box:8080`, which browsers open)
_HOST = re.compile(
    r"(\[(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}\]|[a-z0-9._-]{1,253})(?::(\d{1,5}))?", re.I | re.A
)


def reached_url(request: Request) -> str:
    """The address people reach the box at: its public URL when set, else the one this
    browser reached, not the listen address (`0.0.0.0:8080` behind a name)."""
    config: Config = request.app.ctx.config
    if config.server.public_url:
        return config.server.base_url
    return reached_origin(request) or config.server.base_url


def reached_origin(request: Request) -> str | None:
    """`scheme://host[:port]` as the browser reached it (lower-case, the scheme's own port
    left out, as a browser's Origin says it); None without a usable Host."""
    scheme = reached_scheme(request)
    found = _forwarded_host(request) or _host_port(request.headers.get("host", ""))
    if found is None:
        return None
    host, port = found
    if port is None:
        port = _forwarded_port(request)
    return f"{scheme}://{host}" + ("" if port in (None, DEFAULT_PORTS[scheme]) else f":{port}")


def reached_scheme(request: Request) -> str:
    """http or https: a trusted proxy's X-Forwarded-Proto entry, else the connection's."""
    proto = _trusted_entry(request, request.forwarded.get("proto"))
    if proto in DEFAULT_PORTS:
        return proto
    return "https" if request.conn_info and request.conn_info.ssl else "http"


def _forwarded_host(request: Request) -> HostPort | None:
    return _host_port(_trusted_entry(request, request.forwarded.get("host")) or "")


def _forwarded_port(request: Request) -> int | None:
    """A trusted proxy's X-Forwarded-Port (Sanic reads a single one; a chain's list is read
    from the header once Sanic trusted the proxies)."""
    port = request.forwarded.get("port")
    if port is None and request.forwarded:
        port = _trusted_entry(request, request.headers.get("x-forwarded-port"))
    text = str(port or "")
    return int(text) if text.isdecimal() and 0 < int(text) < 65536 else None


def _trusted_entry(request: Request, value: object) -> str | None:
    """The entry of a forwarded header's comma list the trusted proxy count points at."""
    entries = [entry.strip() for entry in str(value or "").split(",") if entry.strip()]
    if not entries:
        return None
    count = max(1, int(request.app.config.get("PROXIES_COUNT") or 1))
    return entries[-min(count, len(entries))]


def _host_port(text: str) -> HostPort | None:
    """A host[:port] (a name or a bracketed IPv6 address; lower-case), the port in range; None
    for anything else."""
    found = _HOST.fullmatch(text)
    if found is None:
        return None
    host, port = found[1].lower(), None if found[2] is None else int(found[2])
    return None if port is not None and not 0 < port < 65536 else (host, port)
