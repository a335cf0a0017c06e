"""One-time sign-in codes: 6 random digits, stored only as an HMAC keyed with the server secret.

One row per email (OtpCode): a new code replaces the old one. A code works once, until it
expires, and dies after MAX_ATTEMPTS wrong tries. A new code whose mail was not sent is
discarded and the one it replaced put back (with its wrong tries, and any the new one took):
the code in the person's inbox keeps working. The plain code exists only in memory, in
the mail, and (console backend) in the server log.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from codelace_box.db.core import exclusive, utcnow, write_transaction
from codelace_box.db.models import OtpCode
from codelace_box.errors import InvalidRequest

CODE_DIGITS = 6
MAX_ATTEMPTS = 5
_CONTEXT = b"codelace-box sign-in code v1\n"
_CODE_RE = re.compile(rf"^[0-9]{{{CODE_DIGITS}}}$")


def generate_code() -> str:
    """Six uniformly random digits from the OS's CSPRNG."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def hash_code(secret_key: str, email: str, code: str) -> str:
    """The stored form of a code: HMAC-SHA256 over the email and the code."""
    message = _CONTEXT + email.encode() + b"\n" + code.encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def parse_code(raw: object) -> str:
    """The code as typed, without spaces, its digits in ASCII (an IME's full-width ones, an
    Arabic keyboard's); 400 unless it is six digits."""
    code = "".join(raw.split()) if isinstance(raw, str) else ""
    if not code.isascii() and len(code) <= 2 * CODE_DIGITS:
        code = "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in code)
    if not _CODE_RE.match(code):
        raise InvalidRequest(
            f"code must be the {CODE_DIGITS} digits from the sign-in email",
            code="invalid_code",
            param="code",
        )
    return code


@dataclass(frozen=True)
class LiveCode:
    """A stored code's row as it was (what a discarded newer code puts back)."""

    code_hash: str
    attempts: int
    expires_at: datetime
    created_at: datetime


@dataclass(frozen=True)
class StoredCode:
    """A code just stored: its hash, and the live code it replaced (None if there was none)."""

    email: str
    code_hash: str
    replaced: LiveCode | None


def store_code(secret_key: str, email: str, code: str, ttl_sec: int) -> StoredCode:
    """Make `code` the one live code of `email`, replacing any other."""
    now = utcnow()
    code_hash = hash_code(secret_key, email, code)
    with write_transaction() as tx:
        exclusive(tx, f"otp:{email}")  # boxes sharing a database: one writer per email
        old = OtpCode.get_or_none(OtpCode.email == email, OtpCode.expires_at > now)
        OtpCode.delete().where((OtpCode.email == email) | (OtpCode.expires_at < now)).execute()
        OtpCode.create(
            email=email,
            code_hash=code_hash,
            attempts=0,
            expires_at=now + timedelta(seconds=ttl_sec),
            created_at=now,
        )
    replaced = None
    if old is not None:
        replaced = LiveCode(old.code_hash, old.attempts, old.expires_at, old.created_at)
    return StoredCode(email, code_hash, replaced)


def discard_code(stored: StoredCode) -> None:
    """Delete a code whose mail could not be sent, unless a newer one replaced it meanwhile,
    and put back the code it replaced if that one is still alive: it keeps its wrong tries,
    plus those the discarded code took (nobody gets fresh tries at it)."""
    email = stored.email
    with write_transaction() as tx:
        exclusive(tx, f"otp:{email}")
        ours = OtpCode.get_or_none(OtpCode.email == email, OtpCode.code_hash == stored.code_hash)
        if ours is None:
            return  # used, or replaced by a newer code: nothing of ours to undo
        ours.delete_instance()
        before = stored.replaced
        if before is None or before.expires_at <= utcnow():
            return
        attempts = before.attempts + ours.attempts
        if attempts < MAX_ATTEMPTS:
            OtpCode.create(
                email=email,
                code_hash=before.code_hash,
                attempts=attempts,
                expires_at=before.expires_at,
                created_at=before.created_at,
            )


def consume_code(secret_key: str, email: str, code: str) -> None:
    """Use up the live code of `email` if `code` is it; 400 with the reason otherwise.

    A wrong try is counted (and the code deleted at the MAX_ATTEMPTS-th) before the error is
    raised, so the count survives the failed request.
    """
    with write_transaction() as tx:
        exclusive(tx, f"otp:{email}")  # a wrong try on another box waits: each one counts
        failure = _check_and_consume(secret_key, email, code)
    if failure is not None:
        raise failure


def _check_and_consume(secret_key: str, email: str, code: str) -> InvalidRequest | None:
    row = OtpCode.get_or_none(OtpCode.email == email)
    if row is None:
        return InvalidRequest(
            "no valid sign-in code for this email (it was used, replaced or never sent): "
            "request a new one",
            code="invalid_code",
            param="code",
        )
    if row.expires_at <= utcnow():
        row.delete_instance()
        return InvalidRequest(
            "the sign-in code has expired: request a new one", code="code_expired", param="code"
        )
    if hmac.compare_digest(row.code_hash, hash_code(secret_key, email, code)):
        row.delete_instance()
        return None
    attempts = row.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        row.delete_instance()
        return InvalidRequest(
            f"wrong code; after {MAX_ATTEMPTS} wrong tries the code no longer works: "
            "request a new one",
            code="too_many_attempts",
            param="code",
        )
    OtpCode.update(attempts=attempts).where(OtpCode.id == row.id).execute()
    left = MAX_ATTEMPTS - attempts
    return InvalidRequest(
        f"wrong code ({left} {'try' if left == 1 else 'tries'} left)",
        code="invalid_code",
        param="code",
    )
