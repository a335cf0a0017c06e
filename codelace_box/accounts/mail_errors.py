"""What a failed SMTP delivery means: the reason the person signing in is shown (and whether
to try again later or check the address), the outcome it is counted under in
codelace_sign_in_mails_total, and what the server (or the system) said, for the operator's
log only, on one bounded line with no secret in it.
"""

from __future__ import annotations

import re
import smtplib
import ssl

_REASONS: list[tuple[type[BaseException], str]] = [
    (smtplib.SMTPAuthenticationError, "the mail server refused the login"),
    (smtplib.SMTPRecipientsRefused, "the mail server refused the recipient"),
    (ssl.SSLCertVerificationError, "the mail server's TLS certificate did not verify"),
    (ssl.SSLError, "TLS with the mail server failed"),
    (smtplib.SMTPServerDisconnected, "the mail server closed the connection"),
    (TimeoutError, "the mail server did not answer in time"),
    (smtplib.SMTPException, "the mail server failed"),
]


_MISSING = {  # an extension the server does not offer, by smtplib's word for it
    "STARTTLS": "the mail server does not support STARTTLS",
    "AUTH": "the mail server does not offer login (SMTP AUTH)",  # many: only after STARTTLS
    "SMTPUTF8": "the mail server does not support international (SMTPUTF8) addresses",
    "": "the mail server does not support what the mail needs",
}
_OUTCOMES: list[tuple[type[BaseException], str]] = [
    (smtplib.SMTPAuthenticationError, "login_refused"),
    (smtplib.SMTPNotSupportedError, "unsupported"),
    (smtplib.SMTPServerDisconnected, "disconnected"),
    (smtplib.SMTPException, "rejected"),
    (ssl.SSLError, "tls_failed"),
    (TimeoutError, "timeout"),
]


def failure_outcome(exc: BaseException) -> str:
    """The outcome label of a mail not sent (codelace_sign_in_mails_total): refused (a 5xx to
    the recipient), deferred (any 4xx), login_refused, unsupported, disconnected, rejected
    (another refusal), tls_failed, timeout or unreachable."""
    if refused_for_good(exc):
        return "refused"
    if deferred(exc):
        return "deferred"
    return next((label for kind, label in _OUTCOMES if isinstance(exc, kind)), "unreachable")


def deferred(exc: BaseException) -> bool:
    """Whether the server said "not now" (a 4xx: greylisting, busy, a full queue), at any step
    of the exchange: worth another try a little later, unlike a 5xx."""
    for_good = refused_for_good(exc)
    if for_good is not None:
        return not for_good
    status = getattr(exc, "smtp_code", 0)
    return isinstance(exc, smtplib.SMTPResponseException) and 400 <= status < 500


def refused_for_good(exc: BaseException) -> bool | None:
    """For a refused recipient: whether the server refused it for good (5xx), else for now."""
    if not isinstance(exc, smtplib.SMTPRecipientsRefused) or not exc.recipients:
        return None
    status = next(iter(exc.recipients.values()))[0]
    return 500 <= status < 600


def user_message(exc: BaseException, reason: str) -> str:
    """The 503's message: check the address if the server refused it for good, else later."""
    if refused_for_good(exc):
        return "could not send the sign-in email: the mail server refused this address; check it"
    return f"could not send the sign-in email ({reason}); try again later"


def server_said(exc: BaseException) -> str:
    """What the server (or the system) said, for the operator's log: an SMTP reply's status
    and words, a certificate's verification error, an OS error's text."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused) and exc.recipients:
        status, refusal = next(iter(exc.recipients.values()))
        return f"the server said: {status} {refusal.decode(errors='replace')}"
    if isinstance(exc, smtplib.SMTPResponseException):
        words: bytes | str = exc.smtp_error
        text = words.decode(errors="replace") if isinstance(words, bytes) else str(words)
        return f"the server said: {exc.smtp_code} {text}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return str(exc.verify_message or exc.reason)
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc)
    return str(exc) or type(exc).__name__


_CONTROL_RUN = re.compile(r"[\x00-\x1f\x7f]+")
MAX_SAID_CHARS = 300


def scrubbed(said: str, *secrets: str) -> str:
    """One log-safe line: no control characters (a reply's lines joined), no secret, bounded."""
    line = _CONTROL_RUN.sub(" ", said).strip()
    for secret in secrets:
        if secret:
            line = line.replace(secret, "***")
    return line[:MAX_SAID_CHARS]


def failure_reason(exc: BaseException) -> str:
    """What went wrong, in words safe to show (no message content, no credentials)."""
    if refused_for_good(exc) is False:
        return "the mail server refused the address for now"
    if isinstance(exc, smtplib.SMTPNotSupportedError):  # smtplib says which extension
        return _MISSING.get(next((w for w in _MISSING if w in str(exc)), ""), _MISSING[""])
    if isinstance(exc, smtplib.SMTPResponseException) and not isinstance(
        exc, smtplib.SMTPAuthenticationError
    ):
        return f"the mail server answered {exc.smtp_code}"
    if isinstance(exc, ssl.SSLError) and exc.reason == "WRONG_VERSION_NUMBER":
        return "TLS with the mail server failed: it does not speak TLS on this port"
    for kind, reason in _REASONS:
        if isinstance(exc, kind):
            return reason
    return "the mail server is unreachable"
