"""Sanic's HTTP/1.1 connection held to the bounds a careful server keeps (nginx's as reference).

- A request must arrive within bounds. Sanic's request timeout counts from the last byte
  received, so a client sending a header line (or a body byte) now and then held its
  connection forever (slowloris). Here the head must arrive whole within `REQUEST_TIMEOUT`
  of its first byte (nginx's client_header_timeout), and a body must average MIN_BODY_RATE
  bytes a second after a first `REQUEST_TIMEOUT` of grace, and get a byte at least every
  `REQUEST_TIMEOUT` (nginx's client_body_timeout); past either, a 408.
- A client that stops reading its answer is let go. Sanic waits to write for as long as the
  response timeout (an hour), and a stream's upstream call, hold and pooled connection waited
  with it. Once nothing could be written for `SEND_TIMEOUT` (nginx's send_timeout) the
  connection is closed: the handler sees a client that left (a stream reads its upstream on,
  within the output cap and the read timeout, and is charged: gateway/relay.py).
- A request target that is no URL (CONNECT's `host:port`, control bytes): Sanic builds its
  error answer on a request of that same target, which raised again, so the client got no
  answer and the log a traceback holding the raw bytes. The 400 is made on target `*`.
- A head with a malformed field line (a name that is no token, such as one with a blank or a
  control byte before the colon, a fold, NUL, a bare CR or LF):
  a 400 and the connection closed, as RFC 9112 asks; Sanic read `Content-Length : 5` as no
  length and the body as the next request (request smuggling).
- A request without a Host field (HTTP/1.1), with two, or with one whose value is no host (a
  blank, `@`, `/`, a control byte; empty, as nginx refuses it): a 400, as RFC 9112 3.2 asks
  (Sanic served it; a proxy in front routing by one Host and the box reading another disagree
  on where the request goes). One lookup in the parsed fields; the value checked once a connection.
- An HTTP/1.0 request with Transfer-Encoding: a 400 and the connection closed (RFC 9112 6.1:
  its framing is faulty). Sanic read the body as chunked and, with `Connection: keep-alive`,
  served what followed, where a proxy reading HTTP/1.0 (no chunked coding, so no body) takes
  the chunks for the next request (request smuggling).
- An HTTP/1.0 request's `Expect: 100-continue` is ignored (RFC 9110 10.1.1: a 1.0 client takes
  a `100 Continue` for the answer); its streams are framed as http_framing.py says.
- `Expect: 100-continue` with a Content-Length past the limit: the 413 at once, without the
  `100 Continue` that asked the client to send it all.
- A chunked body of tiny chunks: each chunk costs the loop about 9 us whatever it holds, so
  10 MiB in 1-byte chunks held it a minute and a half (without a key too: the body is read to
  its end after the 401). Past FREE_CHUNKS a body must average MIN_CHUNK_BYTES a chunk: a 400.
- A stop closes a connection whose request head is still arriving, as an idle one: no request
  of it has begun. Sanic held the stop through its whole window (30 s) for it, then logged a
  traceback.
- A client that asked for no persistent connection (`Connection: close`, or HTTP/1.0 without
  keep-alive) and shuts its write side once its request is sent (TCP FIN: shutdown(SHUT_WR), as
  netcat, fortio -halfclose and some proxies do) still reads: it gets its answer, streamed or
  not. Sanic's protocol has no eof_received, so asyncio closed the connection at the FIN and the
  handler was cancelled as if the client had left (no answer; the call abandoned). The FIN of a
  client that asked to keep the connection contradicts that: it left, and is let go at once, as
  before (the SDKs' way of giving up), unless requests it pipelined wait behind the one in
  flight: it is reading their answers (an SDK that gives up has none), and gets every one. A
  FIN and a close() look the same on the wire, so a client that closed for good is seen at the
  next write (its RST). While a request's head or body is still missing, the FIN closes the
  connection, as before.
- A Content-Length or chunk size that is no plain number: RFC 9112 has 1*DIGIT and 1*HEXDIG
  (a chunk size may be followed by blanks before its extension, a Content-Length by the blanks
  that end any field line). Sanic read them with int(),
  which takes `0x14`, blanks before it and any script's digits (`\uff12\uff10` is 20): a proxy
  in front that reads them otherwise (strtol reads `0x14` as 0) splits the bytes into other
  requests than the box does (request smuggling). So is chunk data not followed by CRLF (Sanic
  took any two bytes there for it) and a bare CR, LF or NUL in a chunk-size line (a proxy may
  end the line there). A 400 and the connection closed.
- First bytes that cannot begin a request (a TLS handshake sent to the plain port, `curl
  https://` on an http box), or a request line ended by a bare LF (`printf ... | nc`): a 400
  at once, not a wait for a CRLF CRLF that never comes.
"""

from __future__ import annotations

import re
import string
from time import monotonic
from typing import Any

from sanic.exceptions import BadRequest, PayloadTooLarge, RequestTimeout
from sanic.http import Http, Stage
from sanic.server.protocols.http_protocol import HttpProtocol

from codelace_box.http_framing import (
    FRAMING_HOOKS,
    TOKEN_CHARS,
    FramedHttp,
    method_of_request_line,
    request_line,
    root_path_if_none,
)

# The Sanic internals this module builds on; serve checks them at start (stopping.py's check)
GUARD_HOOKS: tuple[tuple[Any, str], ...] = tuple(
    (owner, name)
    for owner, names in (
        (Http, "init_for_request http1_request_header create_empty_request recv_buffer stage url "
               "HEADER_MAX_SIZE "
               "_receive_more _safe_int read request protocol "
               "expecting_continue request_body request_bytes request_bytes_left "
               "request_max_size keep_alive exception"),
        (HttpProtocol, "HTTP_CLASS _setup check_timeouts pause_writing resume_writing "
                       "close_if_idle request_timeout _task _http receive_more _data_received "
                       "transport app "
                       "recv_buffer"),
        (Stage, "IDLE REQUEST"),
    )
    for name in names.split()
) + FRAMING_HOOKS  # fmt: skip
MIN_BODY_RATE = 1024  # bytes a second a body must average once its grace is over
# A chunked body's chunks: past the first FREE_CHUNKS they must average MIN_CHUNK_BYTES. Each
# costs the loop about 9 us whatever it holds, so 1-byte chunks made 10 MiB a minute and a half
# of it (a client without a key too: its body is read to the end after the 401).
FREE_CHUNKS = 1024
MIN_CHUNK_BYTES = 256
DEFAULT_SEND_TIMEOUT = 60.0  # Sanic config SEND_TIMEOUT: seconds a client may take nothing
# Bytes that may begin a request: the characters of an HTTP method token (RFC 9110 tchar)
_TOKEN_START = frozenset(TOKEN_CHARS)
# The characters of a Host value (RFC 9112 3.2, uri-host [":" port]: a reg-name's unreserved,
# pct-encoded and sub-delims, an IP literal's brackets); str.strip of them leaves any other
_HOST_CHARS = string.ascii_letters + string.digits + "-._~%!$&'()*+,;=:[]"
# A line of the head (after the request line) that does not start with a token and a colon
_NOT_A_FIELD_NAME = re.compile(rb"\r\n(?![!#$%&'*+\-.^_`|~0-9A-Za-z]+:)")
# A framing field whose value starts, after its OWS (SP, HTAB), with what is no visible ASCII:
# Sanic's str.lstrip takes `\x0b`, `\x0c`, NBSP, ... as blanks too (`Content-Length:\x0b20` was 20)
_FRAMING_AFTER_NOT_OWS = re.compile(
    rb"\r\n(?:content-length|transfer-encoding):[ \t]*[^ \t\r\x21-\x7e]", re.IGNORECASE
)
# blanks after a Content-Length are the field's trailing OWS (RFC 9110 5.5), no part of it
_NUMBER = {10: re.compile(r"[0-9]+[ \t]*"), 16: re.compile(r"[0-9A-Fa-f]+[ \t]*")}


def _malformed_fields(head: bytes) -> bool:
    """Whether a request head holds what RFC 9112 has a server refuse and Sanic took: a field
    name that is no token (`Content-Length : 5` or `Content-Length\\x0b: 5` was no length to
    Sanic, so the body was read as a second request: smuggling past a proxy that reads it as
    one; a blank, `@` or a byte past ASCII in it, or no name), a line folded onto the one
    before, NUL, a CR or LF that ends no line, or a Content-Length or Transfer-Encoding value
    after white space that is no OWS. One scan of the head for the line breaks, a regular
    expression for the names and one for the framing values."""
    crlf = head.count(b"\r\n")
    if head.find(b"\x00") >= 0 or head.count(b"\r") != crlf or head.count(b"\n") != crlf:
        return True
    return bool(_NOT_A_FIELD_NAME.search(head) or _FRAMING_AFTER_NOT_OWS.search(head))


def _chunk_line_whole(buffer: bytearray) -> bool:
    """Whether the buffer starts with the CRLF ending the chunk (or head) before, then a size
    line holding no bare CR or LF (which a proxy may take for its end) and no NUL."""
    end = buffer.find(b"\r\n", 3)  # where Sanic found the end of the size line
    line = buffer[2:end]
    return buffer[:2] == b"\r\n" and not any(c in line for c in (b"\r", b"\n", b"\x00"))


class GuardedHttp(FramedHttp):
    """One connection's requests, with the times their head and body began."""

    __slots__ = ("body_began", "body_looked_at", "chunks", "head_began", "valid_host")

    def __init__(self, protocol: HttpProtocol) -> None:
        super().__init__(protocol)
        self.head_began = self.body_began = 0.0  # checked before the first request's reset
        self.chunks = 0
        self.body_looked_at = False
        self.valid_host: str | None = None  # the Host value last found valid here

    async def read(self) -> bytes | None:
        """A chunk of the body; before the first, the app's `ctx.before_body(request)` (set by
        api/bodies.py) may refuse the request or lower its body limit, so a body is read
        only for a client the box knows."""
        if not self.body_looked_at:
            self.body_looked_at = True
            look = getattr(self.protocol.app.ctx, "before_body", None)
            if look is not None and self.request is not None:
                await look(self.request)
            if self.expecting_continue and self.request_body is True:
                self._refuse_oversized_upfront()  # past the limit `look` lowered (256 KiB)
        if self.request_body == "chunked" and not self.request_bytes_left:
            self._count_chunk()  # its size line comes next
        return await super().read()

    def _count_chunk(self) -> None:
        """A chunk's size line next: a 400 (and the connection closed) once the chunks read
        (`request_bytes` is theirs; not this one, its size unknown yet, nor the last-chunk
        line) are more than FREE_CHUNKS averaging under MIN_CHUNK_BYTES."""
        read, self.chunks = self.chunks, self.chunks + 1
        if read > FREE_CHUNKS and (self.request_bytes or 0) < read * MIN_CHUNK_BYTES:
            self.keep_alive = False
            raise BadRequest(
                f"a chunked body's chunks must average {MIN_CHUNK_BYTES} bytes or more (after "
                f"its first {FREE_CHUNKS}): send larger chunks, or the body with a Content-Length"
            )

    def _safe_int(self, value: str, base: int = 10) -> int:  # type: ignore[override]
        """A Content-Length (base 10) or chunk size (16) as RFC 9112 spells it, else ValueError
        (Sanic answers it with a 400 and closes the connection). A chunk size is read from the
        buffer's `\r\n<size>...\r\n`, whose first two bytes Sanic took on trust: they must be
        the CRLF that ends the chunk (or the head) before it."""
        if not _NUMBER[base].fullmatch(value):
            raise ValueError(f"not a base {base} number")
        if base == 16 and not _chunk_line_whole(self.recv_buffer):
            raise ValueError("chunk data not followed by CRLF, or a bare CR, LF or NUL")
        return int(value, base)

    def init_for_request(self) -> None:
        super().init_for_request()
        self.head_began = self.body_began = 0.0
        self.body_looked_at = False
        self.chunks = 0

    async def http1_request_header(self) -> None:
        await self._skip_empty_lines()
        self.head_began = monotonic()
        buffer = self.recv_buffer
        if buffer and buffer[0] not in _TOKEN_START:
            self.keep_alive = False
            raise BadRequest("not an HTTP/1.1 request (TLS sent to a plain-HTTP port?)")
        line_end = buffer.find(b"\n")
        if line_end > 0 and buffer[line_end - 1] != 13:  # CR
            self.keep_alive = False
            raise BadRequest("the request line must end in CRLF, not a bare LF")
        await super().http1_request_header()
        root_path_if_none(self.request)  # (`GET http://host HTTP/1.1`)
        if self.keep_alive and isinstance(self.protocol, GuardedProtocol):
            self.protocol.left_if_done_sending(self)  # a persistent connection's FIN: it left
        if _malformed_fields(self.request.head):
            self.keep_alive = False
            raise BadRequest("malformed header field (whitespace before its colon, NUL, bare CR)")
        if self._host_refused():
            self.keep_alive = False
            raise BadRequest("a request needs one valid Host header (HTTP/1.1), and never two")
        if self.request.version == "1.0" and self.request_body == "chunked":
            self.keep_alive = False
            raise BadRequest("Transfer-Encoding is no part of HTTP/1.0: send a Content-Length")
        if self.request.version == "1.0":
            self.expecting_continue = False  # RFC 9110 10.1.1: ignored (1.0 knows no 1xx)
        if self.expecting_continue and self.request_body is True:
            self._refuse_oversized_upfront()
        self.body_began = monotonic()

    def _url_of_request_line(self) -> None:
        """A head refused before its request is made (too large: 413; never ending: 408) was
        answered on target `*`: in the OpenAI envelope on the Messages API routes too. The path
        of its request line, come whole, names the route whose envelope the answer has (of an
        absolute-form target, `http://host/v1/messages`, its path, as Sanic routes it)."""
        parts = request_line(self.recv_buffer, self.HEADER_MAX_SIZE)
        if parts is None or not parts[1].isascii():
            return
        target = parts[1]
        scheme, absolute, rest = target.partition(b"://")
        if absolute and scheme.lower() in (b"http", b"https"):
            target = b"/" + rest.partition(b"/")[2]
        if target.startswith(b"/"):
            self.url = target.partition(b"?")[0].decode()

    def _host_refused(self) -> bool:
        """Whether the request lacks its one valid Host (RFC 9112 3.2). The value is checked
        once a connection (a client sends the same one each time): about 0.25 us for a str.strip
        of the host's characters, against 0.02 us for comparing it with the last one."""
        hosts = self.request.headers.getall("host", None)
        if hosts is None:
            return self.request.version == "1.1"
        host = hosts[0]
        if len(hosts) > 1 or (host != self.valid_host and (not host or host.strip(_HOST_CHARS))):
            return True
        self.valid_host = host
        return False

    async def _skip_empty_lines(self) -> None:
        """Empty lines before a request are ignored (RFC 9112 2.2): some clients end a POST
        body with one more CRLF. While only they came the connection is idle (kept alive for
        KEEP_ALIVE_TIMEOUT, then closed silently), not a request late past REQUEST_TIMEOUT.
        Once only: more empty lines after that wait count against the head's time (a client
        sending one now and then would otherwise hold its connection forever)."""
        buffer = self.recv_buffer
        for first in (True, False):
            while buffer[:2] == b"\r\n":
                del buffer[:2]
            if buffer or not first:
                return
            self.stage = Stage.IDLE
            await self._receive_more()
            self.stage = Stage.REQUEST

    def _refuse_oversized_upfront(self) -> None:
        """`Expect: 100-continue` with a Content-Length past the limit: the 413 now, without the
        `100 Continue` Sanic sent first (which told the client to upload it all)."""
        if (self.request_bytes or 0) > self.request_max_size:
            self.expecting_continue = False
            self.keep_alive = False
            raise PayloadTooLarge("Request body exceeds the size limit")

    def holds_next_request(self) -> bool:
        """Whether bytes past this request's body are already here: a client pipelining its
        requests (one that gave up has none waiting behind the request in flight)."""
        if self.request_body == "chunked":
            return False  # where its body ends is not known here
        left = (self.request_bytes_left or 0) if self.request_body else 0
        return bool(self.recv_buffer[left:].strip(b"\r\n"))

    def create_empty_request(self) -> None:
        if self.url is None:  # a head refused before it was parsed
            self._url_of_request_line()
        try:
            super().create_empty_request()
        except BadRequest:  # the target is no URL: answer its 400 on `*`
            self.url = None
            super().create_empty_request()
        if self.request is not None:  # for the access line: what was sent, not Sanic's NONE
            self.request.method = method_of_request_line(self.recv_buffer, self.HEADER_MAX_SIZE)

    def body_overdue(self, now: float, grace: float, last_byte: float) -> bool:
        """Whether a body still arriving fell below MIN_BODY_RATE after its grace, or got no
        byte for a grace (nginx's client_body_timeout: a fast start earns no long silence)."""
        if not self.body_began or not self.request_body:
            return False
        if now - max(last_byte, self.body_began) > grace:
            return True
        elapsed = now - self.body_began - grace
        received = (self.request_bytes or 0) - (self.request_bytes_left or 0)
        return elapsed > 0 and received < elapsed * MIN_BODY_RATE


class GuardedProtocol(HttpProtocol):
    """Sanic's HTTP protocol with the deadlines above (the server's `protocol=`)."""

    HTTP_CLASS = GuardedHttp
    __slots__ = ("_pipelined", "_sends_no_more", "_stalled_since")

    def _setup(self) -> None:
        super()._setup()
        self._stalled_since = 0.0
        self._sends_no_more = False  # the client shut its write side (its FIN came)
        self._pipelined = False  # ... with requests sent behind the one in flight

    def eof_received(self) -> bool | None:
        """The client's FIN. Idle (nothing to answer), a request that asked to keep the
        connection, or TLS (which cannot stay half-open): None, asyncio closes the connection,
        as before. Otherwise it stays open for the answer; a read waiting for more bytes wakes
        to find none (the head may not be read yet: then `left_if_done_sending` decides)."""
        http, transport = getattr(self, "_http", None), self.transport  # unset before its task
        idle = http is None or (http.stage is Stage.IDLE and not self.recv_buffer)
        pipelined = http is not None and bool(http) and http.holds_next_request()
        persistent = http is not None and bool(http) and http.keep_alive  # its head was read
        if idle or (persistent and not pipelined) or transport is None:
            return None
        if transport.get_extra_info("sslcontext"):
            return None
        self._sends_no_more, self._pipelined = True, pipelined
        self._data_received.set()
        return True

    def close_if_idle(self) -> bool:
        """At a stop: close the connection if no request of it has begun (idle, or its head
        still arriving: the client may send it again elsewhere). Sanic held the stop through
        its whole window for a head that never came, then logged a traceback."""
        http, transport = self._http, self.transport
        head_arriving = isinstance(http, GuardedHttp) and http.stage is Stage.REQUEST
        if head_arriving and http.request is None and transport is not None:
            transport.close()  # (as a client that left: Sanic's close() let its task find
            return True  # no transport, and its log line of that raised on the missing request)
        return bool(super().close_if_idle())

    def pause_writing(self) -> None:
        super().pause_writing()
        self._stalled_since = monotonic()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._stalled_since = 0.0

    def left_if_done_sending(self, http: GuardedHttp | None = None) -> None:
        """A request that asked to keep the connection whose FIN came before its head was
        read: the client left (closed as at the FIN before; what runs is cancelled), unless it
        pipelined requests behind it (`http`: the request just read): every one is answered."""
        if not self._sends_no_more or self.transport is None:
            return
        if http is not None and (self._pipelined or http.holds_next_request()):
            self._pipelined = True
            return
        self.transport.close()

    async def receive_more(self) -> None:
        """Wait for more bytes, unless the client sends no more: then close the transport, as
        asyncio did at the FIN (connection_lost cancels what waited, as it did then)."""
        self.left_if_done_sending()
        await super().receive_more()

    def check_timeouts(self) -> None:
        http = self._http
        if self._task and isinstance(http, GuardedHttp):
            now = monotonic()
            stalled = self._stalled_since and now - self._stalled_since > self._send_timeout()
            if stalled and self.transport is not None:
                self.transport.abort()  # connection_lost: the handler sees the client leave
            elif self._request_overdue(http, now):
                http.exception = RequestTimeout("the request did not arrive in time")
                http.keep_alive = False  # the 408 says `connection: close`
                self._task.cancel()  # (again, if the 408 is followed by the body's drain)
        super().check_timeouts()  # Sanic's own timeouts, and the next check scheduled

    def _request_overdue(self, http: GuardedHttp, now: float) -> bool:
        if http.stage is Stage.REQUEST:
            return bool(http.head_began) and now - http.head_began > self.request_timeout
        return http.body_overdue(now, self.request_timeout, self._time)  # _time: last byte in

    def _send_timeout(self) -> float:
        return float(self.app.config.get("SEND_TIMEOUT", DEFAULT_SEND_TIMEOUT))
