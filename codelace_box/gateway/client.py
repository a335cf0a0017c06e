"""The one upstream HTTP client of a server process (aiohttp behind a small interface).

Measured on this machine, aiohttp costs ~0.2 ms of CPU per call against httpx's ~1.2 ms, and
the gateway's whole budget is 0.6 ms; nothing outside this module knows which library it is.
Connect and read (between bytes) timeouts come from the configuration, and so do the limits
on what an upstream may send (`UpstreamLimits`): a whole answer is read only up to its limit
(its Content-Length checked first, then its bytes counted), never buffered past it. Failures
surface as the exceptions below, never as library types, and nothing here logs a header (keys
live there). A connection the box cannot open for want of a file descriptor (EMFILE, ENFILE),
the lookup of the upstream's host name included, is errors.OutOfResources (503): the box's own
failure, never the provider's.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import aiohttp

from codelace_box.errors import OutOfResources
from codelace_box.gateway.head_deadlines import HeadDeadlines
from codelace_box.jsonwire import NOT_JSON, dumps, loads, loads_between_turns
from codelace_box.providers.base import UpstreamRequest

POOL_SIZE = 1024
MAX_ERROR_BODY = 64 * 1024
TAIL_BYTES = 64 * 1024  # the end of an answer too large to take, where its usage is
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024  # gateway.max_upstream_body_bytes
DEFAULT_MAX_EVENT_BYTES = 4 * 1024 * 1024  # gateway.max_sse_event_bytes
OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE)  # the box's own trouble, not the upstream's
# A whole answer at least this long is parsed on a thread, the event loop let in meanwhile
# (jsonwire.loads_between_turns); a shorter one inline (orjson: ~10 ms a MiB at most).
OFF_LOOP_BYTES = 1024 * 1024
NOT_SENT = frozenset({"User-Agent"})  # aiohttp's automatic headers the upstream never gets


async def json_of(raw: bytes | bytearray) -> Any:
    """`raw` parsed as JSON: inline when short, on a thread when OFF_LOOP_BYTES or longer
    (jsonwire.loads_between_turns, the loop serving others meanwhile). Bytes that are not
    UTF-8 read as U+FFFD, as in a stream's events (streaming.parse_block). Raises one of
    NOT_JSON."""
    try:
        if len(raw) < OFF_LOOP_BYTES:
            return loads(raw)
        return await asyncio.to_thread(loads_between_turns, raw)
    except UnicodeDecodeError:  # (replaced, the bytes parse without one)
        return await json_of(raw.decode("utf-8", "replace").encode())


class _Request(aiohttp.ClientRequest):
    """aiohttp's request, its automatic headers added without the session's NOT_SENT the way
    aiohttp adds them when nothing is skipped. With a skip-list aiohttp copies every request's
    headers and builds a multidict of the skipped names to look names up in (about 1 us a
    call); the box's requests name Accept and Accept-Encoding themselves, so what goes out is
    the same head. Another skip-list takes aiohttp's own way."""

    def update_auto_headers(self, skip_auto_headers: Iterable[str] | None) -> None:
        if skip_auto_headers != NOT_SENT:
            super().update_auto_headers(skip_auto_headers)
            return
        headers = self.headers
        for name, value in self.DEFAULT_HEADERS.items():
            if name not in headers:
                headers[name] = value


class UpstreamUnreachable(Exception):
    """No answer: connection refused or reset, DNS, TLS, or closed before a status line."""


class UpstreamConnectTimeout(UpstreamUnreachable):
    """The connection could not be made within gateway.connect_timeout_sec."""


class UpstreamReadTimeout(Exception):
    """The upstream went silent for longer than gateway.read_timeout_sec."""


class UpstreamBroken(Exception):
    """The connection failed in the middle of a response body."""


class UpstreamTooLarge(UpstreamBroken):
    """The upstream sent more than the box takes: an answer past gateway.max_upstream_body_bytes
    or a stream event past gateway.max_sse_event_bytes. `tail`: the last bytes read of an
    answer (its usage may be there), `read`: how many bytes of it were read."""

    def __init__(self, message: str, *, tail: bytes = b"", read: int = 0) -> None:
        super().__init__(message)
        self.tail = tail
        self.read = read


@dataclass(frozen=True)
class UpstreamLimits:
    """How much an upstream may send: a whole (non-streamed) answer, one event of a stream."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES


class UpstreamResponse:
    """An upstream answer whose body is read on demand; close() it when done."""

    __slots__ = ("_response", "limits", "status")

    def __init__(self, response: aiohttp.ClientResponse, limits: UpstreamLimits) -> None:
        self._response = response
        self.limits = limits
        self.status = response.status

    def header(self, name: str) -> str | None:
        """A response header, if present."""
        return self._response.headers.get(name)

    async def read(self, limit: int | None = None) -> bytes:
        """The first `limit` bytes of the body, or all of it (as `read_body`)."""
        if limit is None:
            return bytes(await self.read_body())
        try:
            parts: list[bytes] = []
            size = 0
            while size < limit:
                part = await self._response.content.read(limit - size)
                if not part:
                    break
                parts.append(part)
                size += len(part)
            return b"".join(parts)
        except Exception as exc:
            raise _translate(exc) from None

    async def read_body(self, ended: Callable[[bytes], bool] | None = None) -> bytes | bytearray:
        """The whole body, at most `limits.max_body_bytes` of it: past that UpstreamTooLarge is
        raised (without ever holding more than the limit), the rest left unread. `ended` tells
        from each part whether the answer is complete before the body's end (a stream's last
        event, after which an upstream may hold its connection open): the rest is not read."""
        limit = self.limits.max_body_bytes
        declared = self._response.content_length
        if declared is not None and declared > limit:
            raise UpstreamTooLarge(
                f"the upstream's answer is {declared} bytes, more than "
                f"gateway.max_upstream_body_bytes ({limit})"
            )
        body, content = bytearray(), self._response.content
        try:
            while part := await content.read(limit + 1 - len(body)):
                if len(body) + len(part) > limit:
                    raise UpstreamTooLarge(
                        f"the upstream's answer is larger than gateway.max_upstream_body_bytes "
                        f"({limit} bytes)",
                        tail=bytes(body[-TAIL_BYTES:] + part)[-TAIL_BYTES:],
                        read=len(body) + len(part),
                    )
                if not body and len(part) == declared and content.at_eof():  # the whole body
                    return part  # in its first read: no copy, no read of its end (aiohttp saw
                    # it already); the end checked too, as a compressed body's declared length
                    # is of its compressed bytes (a first part may decode to as many)
                body += part
                if ended is not None and ended(part):
                    break
        except UpstreamTooLarge:
            raise
        except Exception as exc:
            raise _translate(exc) from None
        return body

    async def read_json(self) -> Any:
        """The body as JSON; UpstreamBroken if it is not JSON (or nests deeper than json reads),
        UpstreamTooLarge if it is longer than `limits.max_body_bytes`. A large body is parsed
        on a thread, the loop serving others meanwhile (a 47 MiB embeddings answer held it
        1.3 to 1.8 s)."""
        raw = await self.read_body()
        try:
            return await json_of(raw)
        except NOT_JSON:
            raise UpstreamBroken("the upstream answered with a body that is not JSON") from None

    async def read_tail(self, tail: bytes, budget: int) -> tuple[bytes, int, bool]:
        """Read on, holding only the last TAIL_BYTES (after `tail`, what was kept so far), at
        most `budget` bytes: (the tail, the bytes read, whether the body's end was reached)."""
        kept, read = bytearray(tail), 0
        try:
            while read < budget and (part := await self._response.content.read(TAIL_BYTES)):
                read += len(part)
                kept += part
                del kept[:-TAIL_BYTES]
        except Exception as exc:
            raise _translate(exc) from None
        return bytes(kept), read, self._response.content.at_eof()

    async def read_chunk(self) -> bytes:
        """The next bytes of the body as they arrive; b"" at its end. Bytes that arrived
        before the connection broke come first, the failure at the next read."""
        content = self._response.content
        try:
            return await content.readany()
        except Exception as exc:
            if arrived := _arrived_before_failure(content):
                return arrived
            raise _translate(exc) from None

    def close(self) -> None:
        """Drop the connection (an unfinished stream stops the upstream's work)."""
        self._response.close()

    def release(self) -> None:
        """Hand the connection back to the pool (after the body was read completely)."""
        self._response.release()

    def let_go(self, grace_sec: float) -> None:
        """The stream's terminal event was read: nothing more of the body is waited for. A body
        that has ended is back in the pool (aiohttp releases it at its end); one the upstream
        keeps open is given `grace_sec` to end by itself (aiohttp then pools it, read to its
        end: the sentinel and the chunked body's end often come in two writes), then closed. It
        is never pooled half-read and never awaited: the client's stream ends meanwhile."""
        if self._response.content.is_eof():
            self._response.release()
        else:
            asyncio.get_running_loop().call_later(grace_sec, self._response.close)


def _arrived_before_failure(content: aiohttp.StreamReader) -> bytes:
    """What a broken connection's reader still holds: aiohttp's readany() raises the failure
    as soon as it is set, dropping the bytes that came before it (a stream's last events, when
    the relay read them a moment after the upstream sent them and hung up)."""
    if not getattr(content, "_buffer", None):
        return b""
    try:
        return content._read_nowait(-1)  # the buffer, without the failure check
    except Exception:  # aiohttp's internals changed: the failure alone, as before
        return b""


def _translate(exc: BaseException) -> BaseException:
    """aiohttp's exception as one of ours (cancellation passes through untouched)."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return UpstreamConnectTimeout("could not connect to the upstream in time")
    if isinstance(exc, asyncio.TimeoutError):
        return UpstreamReadTimeout("the upstream did not answer in time")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return UpstreamBroken("the upstream connection broke during the response")
    if (isinstance(exc, OSError) and exc.errno in OUT_OF_DESCRIPTORS) or _lookup_starved(exc):
        return OutOfResources(
            "the gateway is out of resources (no free file descriptor for the upstream "
            "connection): try again shortly; the operator should raise the box's open-files "
            "limit"
        )
    if isinstance(exc, aiohttp.ClientError | OSError):
        return UpstreamUnreachable(_describe(exc))
    return exc


def _lookup_starved(exc: BaseException) -> bool:
    """A host name's lookup that failed for want of a file descriptor: the C library's lookup
    (aiohttp's resolver) cannot open /etc/hosts or a DNS socket, and says the name is not
    known (EMFILE lost on the way). Whether the box is out of descriptors is asked of the
    kernel: a descriptor it cannot open now."""
    if not isinstance(exc, aiohttp.ClientConnectorDNSError):
        return False
    try:
        os.close(os.open(os.devnull, os.O_RDONLY))
    except OSError as error:
        return error.errno in OUT_OF_DESCRIPTORS
    return False


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to the upstream ({exc.os_error.strerror or 'refused'})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the upstream closed the connection"
    return f"upstream connection failed ({type(exc).__name__})"


class UpstreamClient:
    """A pooled HTTP client; create it inside the event loop that will use it."""

    def __init__(
        self,
        connect_timeout_sec: float,
        read_timeout_sec: float,
        limits: UpstreamLimits | None = None,
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout_sec, sock_read=read_timeout_sec
        )
        # The answer's head is due within the connect timeout and twice the read timeout (once
        # for the request's body to go out: aiohttp's read timer starts after it, once for the
        # answer). The read timeout alone runs between bytes, so 1xx interim answers (103 Early
        # Hints) one after another, or a head written a line at a time, held a call for as long
        # as they came (and a body the upstream never took, for ever).
        self._head_timeout_sec = connect_timeout_sec + 2 * read_timeout_sec
        self.limits = limits or UpstreamLimits()
        self._session: aiohttp.ClientSession | None = None
        self._deadlines: HeadDeadlines | None = None

    async def start(self) -> None:
        """Open the connection pool."""
        self._deadlines = HeadDeadlines(asyncio.get_running_loop(), self._head_timeout_sec)
        connector = aiohttp.TCPConnector(limit=POOL_SIZE, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            skip_auto_headers=NOT_SENT,
            raise_for_status=False,
            request_class=_Request,
        )

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._deadlines is not None:
            self._deadlines.close()

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """POST the request's JSON; returns once the status line and headers arrived. A
        redirect is returned as the answer, never followed."""
        if self._session is None or self._deadlines is None:
            raise UpstreamUnreachable("the upstream client is not started")
        data = dumps(request.json_body) if request.written is None else request.written
        task = asyncio.current_task()
        assert task is not None, "send() runs in a task"
        deadline = self._deadlines.begin(task)
        try:
            response = await self._session.post(  # a redirect is the upstream's answer:
                request.url, data=data, headers=request.headers, allow_redirects=False
            )  # never the body and key sent on to a host it names
        except asyncio.CancelledError:
            if deadline.end():
                raise UpstreamReadTimeout("the upstream did not answer in time") from None
            raise
        except Exception as exc:
            deadline.end()
            raise _translate(exc) from None
        deadline.end()
        return UpstreamResponse(response, self.limits)

    async def __aenter__(self) -> UpstreamClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
