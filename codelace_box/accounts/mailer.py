"""Delivery of sign-in codes: `console` prints them to the server log, `smtp` sends mail.

`build_mailer(config.email)` gives the worker's mailer. SMTP runs smtplib in a thread
(asyncio.to_thread) so the event loop never blocks, over implicit TLS (`smtp_ssl`, SMTPS) or
with optional STARTTLS (either way certificate and host name verified: against the system's
CAs, or `smtp_ca_file` for a relay with a private or self-signed one), and optional login,
within `smtp_timeout_sec` in all (a Deadline ends the exchange however the server stalls).
A server's "not now" (a 4xx reply: greylisting, busy) is tried again a little later, twice at
most, within the same smtp_timeout_sec. A mail that cannot be sent raises
ServiceUnavailable, saying whether to try again later or (an address the server refuses for
good) to check the address; the log line adds what the server said (its status and words,
or the system's error), which only the operator sees (mail_errors.py reads the failures).
Neither the code nor the SMTP password ever reaches a log line or an error message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import smtplib
import socket
import ssl
import threading
import time
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

from codelace_box import metrics
from codelace_box.accounts.mail_errors import (
    deferred,
    failure_outcome,
    failure_reason,
    scrubbed,
    server_said,
    user_message,
)
from codelace_box.accounts.users import ascii_domain
from codelace_box.config import EmailConfig
from codelace_box.errors import ConfigError, ServiceUnavailable

log = logging.getLogger("codelace_box.mail")
SMTP_TIMEOUT_SEC = 20.0
QUIT_TIMEOUT_SEC = 2.0  # the message is taken by then: no reason to wait long for a goodbye
RETRY_WAITS_SEC = (0.5, 1.0)  # after a 4xx ("not now"): two more tries, a little later each
IMPLICIT_TLS_PORT = 465
PLAIN_PORTS = (25, 587)
SUBJECT = "Your codelace-box sign-in code"


class Mailer(Protocol):
    """Sends a sign-in code to an address."""

    async def send_code(self, to_address: str, code: str, ttl_sec: int) -> None: ...


def describe_ttl(ttl_sec: int) -> str:
    """A lifetime in words: '10 minutes', '1 minute', '45 seconds'."""
    if ttl_sec % 60 == 0:
        minutes = ttl_sec // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{ttl_sec} seconds"


_NAMED_ADDRESS = re.compile(r"(.*?)\s*<([^<>]+)>")  # `Name <a@b>`, the name quoted or not


def sender(from_address: str) -> Address:
    """email.from_address with its domain in ASCII (IDNA 2008, as recipients' are): a sender
    at `bücher.de` would need SMTPUTF8 of every server on the way, and a relay that does not
    offer it refuses every mail. The display name stays (sent as an encoded word)."""
    named = _NAMED_ADDRESS.fullmatch(from_address.strip())
    name, address = named.groups() if named else ("", from_address.strip())
    local, _, domain = address.rpartition("@")
    return Address(display_name=_unquoted(name), username=local, domain=ascii_domain(domain))


_QUOTED_PAIR = re.compile(r"\\(.)")


def _unquoted(name: str) -> str:
    """A display name wholly in quotes without them (and its `\\"` escapes undone); quotes
    within a name (`Acme "Support"`) are part of it."""
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return _QUOTED_PAIR.sub(r"\1", name[1:-1])
    return name


def compose_code_mail(from_address: str, to_address: str, code: str, ttl_sec: int) -> EmailMessage:
    """The plain-text sign-in mail with every header a receiving server expects."""
    message = EmailMessage()
    message["Subject"] = SUBJECT
    sent_by = sender(from_address)
    message["From"] = sent_by
    message["To"] = to_address
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain=sent_by.domain or "localhost")
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no autoresponder answers it
    lifetime = describe_ttl(ttl_sec)
    message.set_content(
        f"Your sign-in code is:\n\n    {code}\n\n"
        f"It works once and expires in {lifetime}.\n\n"
        "If you did not ask to sign in, ignore this mail:\n"
        "nobody can sign in without the code.\n"
    )
    return message


class ConsoleMailer:
    """For trying the box out: the code goes to the server log instead of a mailbox."""

    async def send_code(self, to_address: str, code: str, ttl_sec: int) -> None:
        metrics.sign_in_mails("printed").inc()
        log.warning(
            "sign-in code for %s: %s (expires in %s; email.backend = console)",
            to_address,
            code,
            describe_ttl(ttl_sec),
        )


class SmtpMailer:
    """Sends the mail over SMTP (implicit TLS, STARTTLS or plain) with optional login."""

    def __init__(self, config: EmailConfig) -> None:
        self.config = config

    async def send_code(self, to_address: str, code: str, ttl_sec: int) -> None:
        message = compose_code_mail(self.config.from_address, to_address, code, ttl_sec)
        try:
            await self._deliver_retrying(message, to_address, code)
            metrics.sign_in_mails("sent").inc()
        except (smtplib.SMTPException, OSError) as exc:
            metrics.sign_in_mails(failure_outcome(exc)).inc()
            reason = failure_reason(exc)
            said = scrubbed(server_said(exc), code, self.config.smtp_password)
            log.warning("sign-in mail to %s not sent: %s (%s)", to_address, reason, said)
            raise ServiceUnavailable(
                user_message(exc, reason), code="email_delivery_failed"
            ) from None

    async def _deliver_retrying(self, message: EmailMessage, to_address: str, code: str) -> None:
        """Deliver, trying again after each wait of RETRY_WAITS_SEC when the server answers
        "not now" (a 4xx), all within smtp_timeout_sec; any other failure is final at once."""
        ends = time.monotonic() + self.config.smtp_timeout_sec
        for wait in (*RETRY_WAITS_SEC, None):
            try:
                await asyncio.to_thread(self._deliver, message, ends - time.monotonic())
                return
            except (smtplib.SMTPException, OSError) as exc:
                if wait is None or not deferred(exc) or time.monotonic() + wait + 1 > ends:
                    raise
                said = scrubbed(server_said(exc), code, self.config.smtp_password)
                log.info("sign-in mail to %s deferred (%s): trying again in %g s",
                         to_address, said, wait)  # fmt: skip
            await asyncio.sleep(wait)

    def _deliver(self, message: EmailMessage, seconds: float) -> None:
        """One SMTP exchange, ended by a Deadline after `seconds` whatever the server does
        (each read also times out on its own, after SMTP_TIMEOUT_SEC at most)."""
        cfg = self.config
        each = min(SMTP_TIMEOUT_SEC, seconds)
        smtp: smtplib.SMTP
        if cfg.smtp_ssl:
            smtp = smtplib.SMTP_SSL(timeout=each, context=tls_context(cfg))
        else:
            smtp = smtplib.SMTP(timeout=each)
        with Deadline(smtp, seconds) as deadline:
            try:
                self._exchange(smtp, message)
            except (smtplib.SMTPException, OSError) as exc:
                if deadline.passed:
                    raise TimeoutError(f"over {cfg.smtp_timeout_sec} s in all") from exc
                raise
            finally:
                smtp.close()

    def _exchange(self, smtp: smtplib.SMTP, message: EmailMessage) -> None:
        cfg = self.config
        # Made without a host (so the Deadline sees the socket while the greeting is read):
        # the name TLS checks the certificate against is the one smtplib keeps from __init__.
        smtp._host = cfg.smtp_host  # type: ignore[attr-defined]
        status, greeting = smtp.connect(cfg.smtp_host, cfg.smtp_port)  # and read the greeting
        if status != 220:  # refused at once (421 busy, 554 no service): said why, as smtplib's
            raise smtplib.SMTPConnectError(status, greeting)  # __init__ would raise it
        _hello(smtp)
        if cfg.smtp_starttls and not cfg.smtp_ssl:
            smtp.starttls(context=tls_context(cfg))
            _hello(smtp)
        if cfg.smtp_username:
            _login(smtp, cfg.smtp_username, cfg.smtp_password)
        smtp.send_message(message)
        _say_goodbye(smtp)


class Deadline:
    """Ends an SMTP exchange that outlasts `seconds` in all (a server answering each step just
    within the read timeout, or a greeting without end): a timer shuts the connection's socket
    down, the blocked read returns, and `passed` tells the failure was the deadline's."""

    def __init__(self, smtp: smtplib.SMTP, seconds: float) -> None:
        self.smtp = smtp
        self.passed = False
        self._timer = threading.Timer(seconds, self._end)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def _end(self) -> None:
        self.passed = True
        sock = self.smtp.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # the plain socket's, under any TLS layer
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _hello(smtp: smtplib.SMTP) -> None:
    """EHLO, or HELO where the server does not know EHLO (RFC 5321 4.1.1.1); a refusal for
    now (a 4xx, a 421 closing the session) raises with the server's words."""
    status, reply = smtp.ehlo()
    if 400 <= status < 500:
        raise smtplib.SMTPHeloError(status, reply)
    if status != 250:
        status, reply = smtp.helo()
        if not 200 <= status < 300:
            raise smtplib.SMTPHeloError(status, reply)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def _login(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """smtplib's login; credentials beyond ASCII (which smtplib cannot encode: a 500 on every
    sign-in) go as UTF-8 over AUTH PLAIN (RFC 4616) or LOGIN, whichever the server offers."""
    if (username + password).isascii():
        smtp.login(username, password)
        return
    smtp.ehlo_or_helo_if_needed()
    if not smtp.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
    offered = smtp.esmtp_features["auth"].upper().split()
    if "PLAIN" in offered:
        status, reply = smtp.docmd("AUTH", "PLAIN " + _b64(f"\0{username}\0{password}"))
    elif "LOGIN" in offered:
        status, reply = smtp.docmd("AUTH", "LOGIN " + _b64(username))
        if status == 334:
            status, reply = smtp.docmd(_b64(password))
    else:
        raise smtplib.SMTPAuthenticationError(504, b"no PLAIN or LOGIN for a UTF-8 password")
    if status not in (235, 503):  # 503: already signed in, as smtplib takes it
        raise smtplib.SMTPAuthenticationError(status, reply)


def _say_goodbye(smtp: smtplib.SMTP) -> None:
    """QUIT after the server took the message (its 250): the mail is on its way, so an odd or
    late answer fails nothing, and is waited for only briefly."""
    try:
        if smtp.sock is not None:
            smtp.sock.settimeout(QUIT_TIMEOUT_SEC)
        smtp.quit()
    except (smtplib.SMTPException, OSError) as exc:
        log.info("the mail server's answer to QUIT after a sent mail: %s", server_said(exc))


def tls_context(config: EmailConfig) -> ssl.SSLContext:
    """Certificate and host name verified, against `smtp_ca_file` if set (read at each use,
    so a renewed one is taken without a restart), else the system's CAs."""
    return ssl.create_default_context(cafile=config.smtp_ca_file or None)


def build_mailer(config: EmailConfig) -> Mailer:
    """The mailer for the configured backend; ConfigError if SMTP lacks a host or its CA file
    cannot be loaded."""
    if config.backend == "smtp":
        if not config.smtp_host:
            raise ConfigError('email.backend = "smtp" needs email.smtp_host')
        if config.smtp_ca_file:
            try:
                tls_context(config)
            except (OSError, ssl.SSLError) as exc:
                reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
                raise ConfigError(
                    f"email.smtp_ca_file: cannot load {config.smtp_ca_file}: {reason}"
                ) from None
        return SmtpMailer(config)
    return ConsoleMailer()


def startup_level(config: EmailConfig) -> int:
    """The level of the start line: a warning for the console backend and for any hint."""
    hints = _port_hint(config) + _clear_password_hint(config) + _sender_hint(config)
    return logging.WARNING if config.backend == "console" or hints else logging.INFO


def startup_notice(config: EmailConfig) -> str:
    """The line `serve` logs at start about where sign-in codes go (loud for console)."""
    build_mailer(config)
    if config.backend == "console":
        return (
            '*** email.backend = "console": sign-in codes are NOT emailed, they are printed '
            'to this log. Set [email] backend = "smtp" to send them by mail. ***'
        )
    tls = "STARTTLS" if config.smtp_starttls else "no TLS"
    if config.smtp_ssl:
        tls = "implicit TLS"
    login = "with login" if config.smtp_username else "without login"
    trust = ""
    if config.smtp_ca_file and (config.smtp_ssl or config.smtp_starttls):
        trust = f"; the server's certificate checked against {config.smtp_ca_file}"
    return (
        f"sign-in codes are mailed via SMTP {config.smtp_host}:{config.smtp_port} ({tls}, {login})"
        + trust
        + _port_hint(config)
        + _clear_password_hint(config)
        + _sender_hint(config)
    )


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def _clear_password_hint(config: EmailConfig) -> str:
    """A warning for a login with no TLS to another machine: the password crosses the network
    readable by anyone on the way."""
    if not config.smtp_username or config.smtp_ssl or config.smtp_starttls:
        return ""
    if config.smtp_host in LOOPBACK_HOSTS or config.smtp_host.startswith("127."):
        return ""
    return (
        "; the SMTP password goes over the network unencrypted: set email.smtp_starttls "
        "or email.smtp_ssl"
    )


def _sender_hint(config: EmailConfig) -> str:
    """A warning for a From address at no real domain (the default's `localhost`): most relays
    refuse such a sender and receivers junk it, which shows only as mails that never come."""
    if "." in sender(config.from_address).domain:
        return ""
    return (
        f"; mail from {config.from_address} is refused or junked by most mail servers: "
        "set email.from_address to an address at your domain"
    )


def _port_hint(config: EmailConfig) -> str:
    """A warning for the usual mix-up of port and TLS mode (both fail only at the first mail)."""
    if not config.smtp_ssl and config.smtp_port == IMPLICIT_TLS_PORT:
        return f"; port {IMPLICIT_TLS_PORT} usually wants implicit TLS: set email.smtp_ssl = true"
    if config.smtp_ssl and config.smtp_port in PLAIN_PORTS:
        return f"; port {config.smtp_port} usually speaks plain SMTP or STARTTLS, not implicit TLS"
    return ""
