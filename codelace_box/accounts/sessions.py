"""Portal sessions: a browser signed in with an emailed code holds a random token in an HttpOnly
cookie; the server keeps only its SHA-256 hash, the user and an expiry.

A session is not an API key: it opens the portal's own endpoints only. Its CSRF token is an
HMAC of the session's hash under the server secret, so it needs no column and dies with the
session. Expired rows are removed whenever a new session starts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from codelace_box.db.core import durable, utcnow, write_transaction
from codelace_box.db.models import PortalSession, User
from codelace_box.errors import AuthenticationFailed, PermissionDenied

TOKEN_BYTES = 32
_CSRF_CONTEXT = b"codelace-box portal csrf v1\n"


@dataclass(frozen=True)
class Session:
    """Who a portal request is from."""

    session_id: int
    user_id: int
    email: str
    csrf_token: str
    user_uuid: str = ""  # the account's public id (the access line's user id)


@dataclass(frozen=True)
class NewSession:
    session: Session
    token: str  # the cookie value; never stored
    max_age_sec: int


def hash_token(token: str) -> str:
    """The stored form of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(secret_key: str, token_hash: str) -> str:
    """The CSRF token of a session (what its page sends back in a header)."""
    return hmac.new(secret_key.encode(), _CSRF_CONTEXT + token_hash.encode(), "sha256").hexdigest()


def start_session(user: User, secret_key: str, ttl_sec: int) -> NewSession:
    """A fresh session for a user who just proved their address; old expired rows go."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    token_hash = hash_token(token)
    now = utcnow()
    with write_transaction():
        PortalSession.delete().where(PortalSession.expires_at < now).execute()
        row = PortalSession.create(
            user=user.id, token_hash=token_hash, expires_at=now + timedelta(seconds=ttl_sec)
        )
    session = Session(row.id, user.id, user.email, csrf_token(secret_key, token_hash), user.uuid)
    return NewSession(session, token, ttl_sec)


def find_session(token: str | None, secret_key: str) -> Session | None:
    """The live session of a cookie value, or None (no cookie, unknown, expired, account off)."""
    if not token or len(token) > 256 or not token.isascii():
        return None
    token_hash = hash_token(token)
    row = (
        PortalSession.select(PortalSession, User)
        .join(User)
        .where(PortalSession.token_hash == token_hash, PortalSession.expires_at > utcnow())
        .first()
    )
    if row is None or row.user.status != "active":
        return None
    user = row.user
    return Session(row.id, user.id, user.email, csrf_token(secret_key, token_hash), user.uuid)


def require_session(token: str | None, secret_key: str) -> Session:
    """The live session of a cookie value; 401 otherwise."""
    session = find_session(token, secret_key)
    if session is None:
        raise AuthenticationFailed(
            "not signed in: sign in with a code sent by email", code="not_signed_in"
        )
    return session


def check_csrf(session: Session, presented: str | None) -> None:
    """403 unless the request carries this session's CSRF token."""
    if (
        not presented
        or not presented.isascii()  # a header's bytes that are no text: no token of ours
        or not hmac.compare_digest(presented, session.csrf_token)
    ):
        raise PermissionDenied("missing or wrong CSRF token: reload the page", code="csrf_failed")


def end_session(token: str | None) -> None:
    """Sign out: the session's row goes, so its cookie opens nothing any more. Committed with
    an fsync (`durable()`): a session signed out must not come back with a crash of the
    database right after."""
    if token:
        with durable():
            PortalSession.delete().where(PortalSession.token_hash == hash_token(token)).execute()
