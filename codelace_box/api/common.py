"""Helpers every endpoint uses: reading a JSON body, writing JSON, request ids, auth, the
client's address as the rate limits count it."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from sanic import Request
from sanic.helpers import has_message_body
from sanic.response import HTTPResponse

from codelace_box.accounts.keys import AuthContext, authenticated
from codelace_box.accounts.ratelimit import client_bucket
from codelace_box.accounts.users import AccountDisabled
from codelace_box.errors import InvalidRequest, UnsupportedEncoding
from codelace_box.jsonwire import (
    MOST_LEVELS,
    dumps,
    dumps_between_turns,
    has_string,
    let_others_in,
    loads,
    nests_deeper_than_written,
)
from codelace_box.money import usd_text

log = logging.getLogger("codelace_box")
JSON_TYPE = "application/json"
COST_HEADER = "x-codelace-cost-usd"  # what a call cost the user, on its answer
READ = ("GET", "HEAD")  # the methods of every read-only route (HEAD: GET without the body)


def cost_header(nanos: int) -> str:
    """An exact USD amount as plain decimal text (no exponent)."""
    return usd_text(nanos)


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")  # a cheap first look at the raw bytes
_SURROGATE = re.compile("[\ud800-\udfff]")


def new_request_id(now: float | None = None) -> str:
    """A unique id for one request, returned as x-request-id: "req_" and 24 hex digits, the
    first 8 the second it was made (`now`, default the clock), the other 16 random (64 bits).
    Ids made later sort later, so the unique indexes over them (usage rows, holds, the
    ledger's "usage:" keys) take each insert at their end, where the pages are in memory; a
    random id lands anywhere in an index of millions of rows (at 10 million usage rows that
    cost each settlement 15-45 us more on the event loop, and a page read)."""
    second = int(time.time() if now is None else now) & 0xFFFFFFFF
    return f"req_{second:08x}{_RANDOM.hex(8)}"


class _RandomBytes:
    """The operating system's random bytes, read 4 KiB at a time and handed out in slices: one
    `getrandom` call for 512 request ids instead of one each (0.1 us an id against 0.7 us for
    `secrets.token_hex`). A forked child starts with none, so it never repeats its parent's.
    For the event loop's thread (one caller at a time)."""

    __slots__ = ("_at", "_pool")

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self._pool = b""
        self._at = 0

    def hex(self, count: int) -> str:
        """`count` fresh random bytes, as hex."""
        at = self._at
        if at + count > len(self._pool):
            self._pool, at = os.urandom(4096), 0
        self._at = at + count
        return self._pool[at : at + count].hex()


_RANDOM = _RandomBytes()
os.register_at_fork(after_in_child=_RANDOM.clear)


def _not_json(name: str) -> Any:
    """NaN and Infinity are Python's, not JSON's: refuse them instead of passing them on."""
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    """A number past a double's range (1e999) is read as infinity by json, and an infinity is
    written `null` on its way upstream: refuse it as OpenAI's parser does."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


def _strict_loads(raw: Any) -> Any:
    """json.loads, refusing what is no JSON to other parsers (NaN, 1e999) and nesting past
    MOST_LEVELS (every body the box sends on is written by orjson, which stops there; the json
    module's fallback and recursive translations such as Anthropic's schema subset give out a
    few hundred levels later, short of the ~1,000 the json parser reads: a 500). It reads only
    what orjson left (jsonwire.loads), which any body that deep is: a shallow one never pays
    for the check. No client nests near it (serde_json stops reading at 128)."""
    return _checked_loads(raw, None)


def _loads_between_turns(raw: Any) -> Any:
    """`_strict_loads` for a large body parsed on a thread (api/inference.py): json's parser
    calls back into Python at the end of each object, where the event loop gets its turns."""
    return _checked_loads(raw, let_others_in)


def _checked_loads(raw: Any, object_hook: Callable[[Any], Any] | None) -> Any:
    if isinstance(raw, bytes | bytearray):  # UTF-8 only (RFC 8259), a byte order mark let by:
        raw = raw.decode("utf-8-sig")  # json.loads took UTF-16 and UTF-32 bytes too
    value = json.loads(raw, parse_constant=_not_json, parse_float=_finite, object_hook=object_hook)
    if nests_deeper_than_written(value):
        raise RecursionError(f"nested more than {MOST_LEVELS} levels deep")
    return value


def _reason(exc: Exception) -> str:
    """Why the body is no JSON, in the client's terms: Python's own words for a number of more
    than 4300 digits told the client to call sys.set_int_max_str_digits()."""
    text = str(exc)
    if "int_max_str_digits" in text:
        return f"a number has more than {sys.get_int_max_str_digits()} digits"
    return text


def only_fields(body: dict[str, Any], known: tuple[str, ...], call: str) -> dict[str, Any]:
    """`body`, unless it has a field `call` does not take: a 400 naming the first such field,
    as a key's or the profile's fields are refused (a misspelt field is never done without)."""
    unknown = sorted(set(body) - set(known))
    if not unknown:
        return body
    takes = f"takes only {', '.join(known)}" if known else "takes no field"
    raise InvalidRequest(f"{unknown[0]}: not a field of {call} ({call} {takes})", param=unknown[0])


def optional_json_body(request: Request, *, exact: bool = False) -> dict[str, Any]:
    """The body of a request whose fields are all optional (a PATCH, a key's creation): no
    body at all is every field absent; one given must be a JSON object (json_body)."""
    return json_body(request, exact=exact) if request.body else {}


def json_body(
    request: Request, *, exact: bool = False, between_turns: bool = False
) -> dict[str, Any]:
    """The request body as a JSON object; 400 with a clear message otherwise (415 for a body
    in a content coding). `exact`: its fields that are numbers with a fraction or an exponent
    are read exactly, as Decimals (money). `between_turns`: a large body parsed on a thread,
    letting the event loop in (`_loads_between_turns`)."""
    raw = request.body
    if not raw:
        raise InvalidRequest("the request body must be a JSON object", code="invalid_json")
    _check_not_encoded(request)
    try:
        value = loads(raw, fallback=_loads_between_turns if between_turns else _strict_loads)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"malformed JSON body: {_reason(exc)}", code="invalid_json") from None
    except RecursionError:
        raise InvalidRequest(
            f"the JSON body is nested too deeply ({MOST_LEVELS} levels at most)",
            code="invalid_json",
        ) from None
    if not isinstance(value, dict):
        raise InvalidRequest("the request body must be a JSON object", code="invalid_json")
    if _SURROGATE_ESCAPE.search(raw) and has_string(value, _lone_surrogate):
        raise InvalidRequest(
            "the JSON body holds half a UTF-16 surrogate pair (\\ud800-\\udfff alone), "
            "which is not Unicode text",
            code="invalid_json",
        )
    return _exactly(raw, value) if exact else value


def _exactly(raw: bytes, value: dict[str, Any]) -> dict[str, Any]:
    """`value` with its fields that were read as floats read again as Decimals: a float keeps
    about 16 significant digits, so 9.999999999999999999 USD was 10 and 1e-400 was 0."""
    if not any(isinstance(field, float) for field in value.values()):
        return value
    exact = json.loads(raw, parse_float=Decimal)  # parsed once already: JSON, within bounds
    return {name: exact[name] if isinstance(field, float) else field
            for name, field in value.items()}  # fmt: skip


def _check_not_encoded(request: Request) -> None:
    """A body is read as it came: one in a content coding (gzip, ...) was read as JSON, "'utf-8'
    codec can't decode byte 0x8b" to a gzip body, and one labelled so but sent plain passed."""
    coding = request.headers.get("content-encoding", "").strip()
    if coding and any(c.strip().lower() != "identity" for c in coding.split(",")):
        raise UnsupportedEncoding(
            f"Content-Encoding {coding[:40]} is not supported: send the request body "
            "uncompressed (Content-Encoding identity or none)"
        )


def _lone_surrogate(text: str) -> bool:
    """json.loads joins escaped pairs into one character: a surrogate left is a lone half,
    which cannot be UTF-8 encoded."""
    return _SURROGATE.search(text) is not None


# What Sanic takes out of header names and values before sending them (header injection)
_NOT_IN_HEADERS = str.maketrans("", "", "\r\n\x00")


def _header_text(text: str) -> str:
    """`text` without CR, LF or NUL; translated only when some character is unprintable (CR,
    LF and NUL are): `str.translate` walks every character through its table."""
    return text if text.isprintable() else text.translate(_NOT_IN_HEADERS)


class BoxResponse(HTTPResponse):
    """Sanic's response with its headers encoded as Sanic encodes them, CR, LF and NUL taken
    out, but checked first and translated only when needed: 1.4 instead of 7 us for the four
    headers of an answer (on every request: about 1.5% of its CPU at 64 concurrent)."""

    @property
    def processed_headers(self) -> Iterator[tuple[bytes, bytes]]:
        """The headers as bytes to send, a content type added where a body may follow."""
        if has_message_body(self.status):
            self.headers.setdefault("content-type", self.content_type)
        return (
            (
                _header_text(name).encode("ascii"),
                _header_text(f"{value}").encode(errors="surrogateescape"),
            )
            for name, value in self.headers.items()
        )


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> HTTPResponse:
    """A compact JSON response."""
    data = dumps(body)
    return BoxResponse(data, status=status, headers=headers, content_type=JSON_TYPE)


async def large_json_response(body: Any, headers: dict[str, str] | None = None) -> HTTPResponse:
    """`json_response` for a large body (from an upstream answer of 1 MiB or more), written on a
    thread a piece at a time (jsonwire.dumps_between_turns) while the loop serves others."""
    data = await asyncio.to_thread(dumps_between_turns, body)
    return BoxResponse(data, status=200, headers=headers, content_type=JSON_TYPE)


def limit_arg(request: Request, default: int, most: int) -> int:
    """The `?limit=` of a list: `default` when absent; 400 `invalid_limit` unless it is a whole
    number (ASCII digits, leading zeros taken: "0100" is 100) from 1 to `most`."""
    return limit_of(request.args, default, most)


def limit_of(args: Any, default: int, most: int) -> int:
    """`limit_arg` on a request's query arguments (`str.isdigit` alone takes "²", which `int`
    refuses, and "٣", which it reads as 3; `int` refuses over 4300 digits: a 500)."""
    raw = args.get("limit")
    if raw is None:
        return default
    digits = raw.lstrip("0") or raw  # "0100" is 100; "000" stays "000" (0: refused)
    whole = raw.isascii() and raw.isdigit() and len(digits) <= len(str(most))
    if not whole or not 1 <= int(digits) <= most:
        raise InvalidRequest(
            f"limit must be an integer from 1 to {most}", code="invalid_limit", param="limit"
        )
    return int(digits)


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer ...` header, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


# How long the key looked at before a body was read still answers for the call: a body that
# took longer (a slow link; MIN_BODY_RATE lets 10 MiB take hours) has its key looked at again,
# so a key revoked (or expired, or narrowed) meanwhile is refused (the SPEC: within 1 s).
AUTH_REUSE_SEC = 0.5
KEY_PREFIX_LENGTH = 7  # `cl_` + 4, as key_prefix is stored (the access line's)


async def keyed_auth(request: Request, presented: str | None) -> AuthContext:
    """The caller's identity from the key it presented (401/403 otherwise), cached on the
    request: reused only within AUTH_REUSE_SEC of its lookup (api/bodies.py looks before the
    body is read, the handler after)."""
    cached = _fresh_auth(request)
    if cached is not None:
        return cached
    request.ctx.auth = None  # (a refusal now is the access line's: no user named)
    ctx = request.ctx
    try:
        auth = await authenticated(presented)
    except AccountDisabled as refused:  # but a disabled account's key: the line names it
        ctx.refused_as, ctx.key_prefix = refused.whose, (presented or "")[:KEY_PREFIX_LENGTH]
        raise
    ctx.auth, ctx.auth_at = auth, time.monotonic()
    ctx.key_prefix = presented[:KEY_PREFIX_LENGTH] if presented else None  # the access line's
    return auth


def _fresh_auth(request: Request) -> AuthContext | None:
    """The identity cached on the request, if it may still answer for it (AUTH_REUSE_SEC)."""
    ctx = request.ctx
    cached: AuthContext | None = getattr(ctx, "auth", None)
    if cached is not None and time.monotonic() - ctx.auth_at <= AUTH_REUSE_SEC:
        return cached
    return None


async def require_auth(request: Request) -> AuthContext:
    """The caller's identity from its bearer key (401/403 otherwise); the header is read only
    when no identity cached on the request answers (the handler's call after api/bodies.py's)."""
    cached = _fresh_auth(request)
    if cached is not None:
        return cached
    return await keyed_auth(request, bearer_token(request))


# Headers a reverse proxy adds naming the client it forwards for
FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def forwarded_unread(request: Request) -> bool:
    """Whether a proxy forwarded the request for a client whose address the box did not read
    (server.proxies_count = 0, or a proxy that sends no X-Forwarded-For): the proxy's own
    address stands for every client (the loopback, for a proxy on the same machine)."""
    if request.remote_addr:  # the address after proxies_count
        return False
    return any(name in request.headers for name in FORWARDING_HEADERS)


class _Once:
    """A warning a process logs once."""

    said = False


def client_address(request: Request) -> str:
    """The client's address (the socket peer, or the proxy's `for` when proxies are set up)
    as the rate limits count it: an IPv6 client by its /64. A request a proxy forwarded for a
    client the box cannot see is warned of, once: all its clients share one budget."""
    if not _Once.said and forwarded_unread(request):
        _Once.said = True
        log.warning(
            "sign-ins come through a proxy (X-Forwarded-For, Forwarded or X-Real-IP) but "
            "server.proxies_count is 0 (or the proxy sends no X-Forwarded-For): every client "
            "counts as %s in the sign-in rate limits, so one can lock all out; set "
            "server.proxies_count",
            request.ip,
        )
    return client_bucket(request.client_ip or "unknown")
