"""How a request's target is read and an answer framed where Sanic got HTTP/1.x wrong (the
server's Http class, http_guard.GuardedHttp, builds on FramedHttp), and what a head refused
before its request was made sent (its request line's target and method).

- A stream to an HTTP/1.0 request (an answer whose length is not known when it starts) is sent
  without Transfer-Encoding and ends with the connection (RFC 9112 6.1, 6.3). Sanic sent it
  chunked, and a 1.0 client (curl --http1.0, Python's http.client at 1.0), which knows no
  chunked coding, read the chunk-size lines as part of the stream.
- A request target in absolute form without a path (`GET http://host HTTP/1.1`, RFC 9112
  3.2.2, what a client sends to a proxy) is the root path (RFC 9110 4.2.3). Sanic's request had
  no path: its router and then the error handler raised on it, and the client got a 500 in
  plain text ("An error occurred while handling an error"), the log a traceback.
- An answer to `Expect: 100-continue` given before the body was read (a missing key, no route,
  a method not taken) goes without `100 Continue`, and the connection closes after it (RFC 9110
  10.1.1). Sanic sent a `100 Continue` ahead of the refusal: the client (curl, for a body over
  1 MB) uploaded up to max_body_bytes for nothing, the body read and dropped.
"""

from __future__ import annotations

from typing import Any

from httptools import parse_url
from sanic import Request
from sanic.headers import format_http1_response
from sanic.helpers import has_message_body
from sanic.http import Http, Stage

# The Sanic internals this module builds on; serve checks them at start (stopping.py's check)
FRAMING_HOOKS: tuple[tuple[Any, str], ...] = tuple(
    (owner, name)
    for owner, names in (
        (Http, "http1_response_header head_only request response response_size response_func "
               "_send keep_alive stage expecting_continue"),
        (Request, "_parsed_url raw_url version"),
        (Stage, "IDLE RESPONSE"),
    )
    for name in names.split()
)  # fmt: skip


# The characters of an HTTP method token (RFC 9110 tchar)
TOKEN_CHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def request_line(buffer: bytes | bytearray, most: int) -> list[bytes] | None:
    """The request line's method, target and version, when it came whole (within the first
    `most` bytes of the head) as three words."""
    line, end, _ = bytes(buffer[:most]).partition(b"\r\n")
    parts = line.split(b" ")
    return parts if end and len(parts) == 3 else None


def method_of_request_line(buffer: bytes | bytearray, most: int) -> str:
    """The method a head refused before its request was made sent (its request line came
    whole, its first word a token), for the access line; `-` when none is known (Sanic's
    stand-in, NONE, read as a method some client sent)."""
    parts = request_line(buffer, most)
    if parts is None or not parts[0] or parts[0].strip(TOKEN_CHARS):
        return "-"
    return parts[0].decode("ascii")


def root_path_if_none(request: Request | None) -> None:
    """Give a request whose absolute-form target has no path (`http://host`, `http://host?q`)
    the root path, `/`, as RFC 9110 4.2.3 reads it."""
    if request is None or request._parsed_url.path is not None:
        return
    url = request.raw_url  # a scheme and an authority (only they parse without a path)
    query = url.find(b"?", url.find(b"://") + 3)
    at = len(url) if query < 0 else query
    request._parsed_url = parse_url(url[:at] + b"/" + url[at:])


class FramedHttp(Http):
    """Sanic's HTTP/1.1 connection, its answers to HTTP/1.0 requests framed as 1.0 reads them."""

    __slots__ = ()

    async def http1_response_header(self, data: bytes, end_stream: bool) -> None:
        """The head of an answer (and its first bytes); to an HTTP/1.0 request, a stream's is
        sent without Transfer-Encoding, and the connection ends with the stream. An answer to
        `Expect: 100-continue` before the body was read goes without `100 Continue`."""
        response = self.response
        if self.expecting_continue:  # answered before the body was asked for: not asked now
            self.expecting_continue = False
            self.keep_alive = False  # (the body, never sent, cannot be told from what follows)
        if not self._until_closed(response, end_stream):
            await super().http1_response_header(data, end_stream)
            return
        self.keep_alive = False
        response.headers["connection"] = "close"
        self.response_size = len(data)
        head = format_http1_response(response.status, response.processed_headers)
        self.response_func = self._http10_response_until_closed
        self.stage = Stage.RESPONSE
        await self._send(head + data)

    def _until_closed(self, response: Any, end_stream: bool) -> bool:
        """Whether the answer to this request is one an HTTP/1.0 client reads to the end of
        the connection: a body of a length not known yet."""
        return (
            not end_stream
            and self.request is not None
            and self.request.version == "1.0"
            and not self.head_only
            and has_message_body(response.status)
            and "content-length" not in response.headers
            and not getattr(response, "body", None)
        )

    async def _http10_response_until_closed(self, data: bytes, end_stream: bool) -> None:
        """A part of a close-delimited body, sent as it is."""
        if data:
            await self._send(data)
        if end_stream:
            self.response_func = None  # type: ignore[assignment]  # (as Sanic does)
            self.stage = Stage.IDLE
