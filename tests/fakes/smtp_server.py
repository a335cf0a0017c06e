"""A real SMTP server (aiosmtpd) on 127.0.0.1 that records every message it receives.

It can refuse recipients (`rcpt_reply`: any status and text; `first_rcpt_replies`: only the
next few) or messages after reading them
(`reject_data`), answer QUIT late or oddly (`quit_delay`, `quit_reply`), require STARTTLS, or
speak TLS from the first byte (`implicit_tls`, SMTPS), and AUTH, with a self-signed
certificate (`make_self_signed_cert`), and hands messages to tests as parsed `EmailMessage`s;
`smtputf8=False` leaves SMTPUTF8 (8-bit addresses) unoffered. `ScriptedSmtpServer` answers
from a script (a greeting, a reply to EHLO), `TarpitSmtpServer` greets without end. The
codelace-box under test talks to them over TCP like to any mail server.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support import free_port

CODE_RE = re.compile(r"\b(\d{6})\b")


@dataclass(frozen=True)
class Received:
    """One message as the server saw it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    message: EmailMessage
    accepted: bool
    tls: bool  # the session was encrypted (STARTTLS or implicit TLS)
    auth_login: str | None

    @property
    def body(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None, "the mail has no text/plain part"
        return str(part.get_content())

    @property
    def code(self) -> str:
        """The 6-digit code in the body (exactly one must be there)."""
        found = CODE_RE.findall(self.body)
        assert len(found) == 1, f"expected one 6-digit code in the mail, found {found}"
        return str(found[0])


class _Handler:
    def __init__(self, owner: RecordingSmtpServer) -> None:
        self.owner = owner

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.owner.quit_delay)
        return self.owner.quit_reply

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.owner.rcpt_tries.append(address)
        if self.owner.first_rcpt_replies:
            return self.owner.first_rcpt_replies.pop(0)
        if self.owner.rcpt_reply is not None:
            return self.owner.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data.login.decode() if session.auth_data else None
        accepted = not self.owner.reject_data
        transport = server.transport
        encrypted = transport is not None and transport.get_extra_info("ssl_object") is not None
        self.owner.record(
            Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                raw=raw,
                message=message,
                accepted=accepted,
                tls=encrypted,
                auth_login=login,
            )
        )
        return "250 2.0.0 OK" if accepted else "554 5.0.0 Transaction failed (test refusal)"


class RecordingSmtpServer:
    """aiosmtpd on a free loopback port; `messages` holds what arrived, oldest first."""

    def __init__(
        self,
        tls_context: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        smtputf8: bool = True,
    ) -> None:
        self.port = free_port()
        self.messages: list[Received] = []
        self.reject_data = False
        self.rcpt_reply: str | None = None  # e.g. "550 5.1.1 <x>: Recipient address rejected"
        self.first_rcpt_replies: list[str] = []  # the next RCPTs' replies, before rcpt_reply
        self.rcpt_tries: list[str] = []  # every RCPT's address, refused or not
        self.quit_reply = "221 Bye"  # and after quit_delay seconds
        self.quit_delay = 0.0
        self.credentials = credentials
        self._arrived = threading.Condition()
        kwargs: dict[str, Any] = {"enable_SMTPUTF8": smtputf8}  # False: as SES or Exchange
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=True)
        if implicit_tls is not None:
            # aiosmtpd counts only STARTTLS as TLS for AUTH; the whole session is TLS here
            kwargs.update(ssl_context=implicit_tls, auth_require_tls=False)
        if credentials is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True)
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **kwargs)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert self.credentials is not None
        ok = (
            isinstance(data, LoginPassword)
            and (
                data.login.decode(),
                data.password.decode(),
            )
            == self.credentials
        )
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    def start(self) -> RecordingSmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def record(self, received: Received) -> None:
        with self._arrived:
            self.messages.append(received)
            self._arrived.notify_all()

    def messages_to(self, address: str) -> list[Received]:
        with self._arrived:
            return [m for m in self.messages if address in m.rcpt_tos]

    def wait_for(self, address: str, count: int = 1, timeout: float = 30) -> Received:
        """The `count`-th message to `address` (1 = the first), waiting for it to arrive."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                found = [m for m in self.messages if address in m.rcpt_tos]
                if len(found) >= count:
                    return found[count - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no message #{count} to {address} within {timeout}s")
                self._arrived.wait(left)

    def latest_code(self, address: str) -> str:
        """The code of the newest message to `address`."""
        found = self.messages_to(address)
        assert found, f"no message to {address}"
        return found[-1].code


def make_self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A CA-style self-signed certificate for 127.0.0.1/localhost; (cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "codelace-test-smtp")])
    now = datetime.datetime.now(datetime.UTC)
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_tls_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """The TLS context the fake SMTP server offers (with STARTTLS or from the first byte)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


class TarpitSmtpServer:
    """A mail server that greets without end: a "220-" continuation line every `every`
    seconds, never the last line (a tarpit, or one hung halfway). Each line comes well within
    any read timeout, so only a deadline on the whole exchange ends it."""

    def __init__(self, every: float = 0.5) -> None:
        self.port = free_port()
        self.every = every
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._stopped = threading.Event()

    def start(self) -> TarpitSmtpServer:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed by stop()
                return
            threading.Thread(target=self._stutter, args=(connection,), daemon=True).start()

    def _stutter(self, connection: socket.socket) -> None:
        with connection:
            while not self._stopped.wait(self.every):
                try:
                    connection.sendall(b"220-please wait\r\n")
                except OSError:  # the client hung up
                    return

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()


class ScriptedSmtpServer:
    """A mail server answering from a script, as aiosmtpd cannot: its `greeting`, then each
    command's reply from `replies` by verb (250 for any other; DATA's text is read and taken
    with a 250, `taken` counting them). A reply starting 421 closes the session (RFC 5321
    3.8), as a 421 greeting (too busy) does; after a 554 greeting (no service for this client,
    e.g. a blocklisted address) every command but QUIT gets 503. `connections` counts the
    sessions opened."""

    def __init__(self, greeting: str = "220 mx.test ESMTP", **replies: str) -> None:
        self.port = free_port()
        self.greeting = greeting
        self.replies = {verb.upper(): reply for verb, reply in replies.items()}
        self.connections = 0
        self.taken = 0
        self._listener = socket.create_server(("127.0.0.1", self.port))

    def start(self) -> ScriptedSmtpServer:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed by stop()
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):
            connection.sendall(self.greeting.encode() + b"\r\n")
            if self.greeting.startswith("421"):
                return
            lines, greeted = connection.makefile("rb"), False
            for line in lines:
                verb = line.split(b" ", 1)[0].strip().decode().upper()
                reply = self._reply(verb)
                greeted = greeted or (verb in ("EHLO", "HELO") and reply.startswith("250"))
                if verb == "MAIL" and not greeted:
                    reply = "503 5.5.1 Error: send HELO/EHLO first"
                if reply.startswith("354"):
                    connection.sendall(reply.encode() + b"\r\n")
                    for text in lines:  # the message, then a line with one "."
                        if text.rstrip(b"\r\n") == b".":
                            break
                    self.taken += 1
                    reply = "250 2.0.0 Ok: queued"
                connection.sendall(reply.encode() + b"\r\n")
                if reply.startswith(("421", "221")):
                    return

    def _reply(self, verb: str) -> str:
        if verb == "QUIT":
            return "221 2.0.0 Bye"
        if not self.greeting.startswith("220"):
            return "503 5.5.1 No service"
        if verb in self.replies:
            return self.replies[verb]
        return "354 End data with <CR><LF>.<CR><LF>" if verb == "DATA" else "250 OK"

    def stop(self) -> None:
        self._listener.close()
