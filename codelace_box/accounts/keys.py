"""API keys: `cl_` + 40 base62 characters from `secrets`, stored only as a SHA-256 hash.

`authenticate()` is on every request's path: one indexed lookup joined to the user, so a key
revoked or a user disabled by another process stops working on the very next request.
`last_used_at` is written at most once a minute per key, not on every request: the lookup
reads it, and only a value older than a minute (in any process) leads to a write.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from codelace_box.accounts.users import clean_name
from codelace_box.db.core import MAX_SQLITE_INTEGER, iso_z, query_one, utcnow, write_transaction
from codelace_box.db.models import ApiKey
from codelace_box.errors import AuthenticationFailed, NotFound, PermissionDenied

KEY_PREFIX = "cl_"
KEY_BODY_LENGTH = 40
_BASE62 = string.ascii_letters + string.digits
MAX_KEY_NAME = 100
LAST_USED_WRITE_INTERVAL_SEC = 60.0


@dataclass(frozen=True)
class AuthContext:
    """Who a request is from."""

    user_id: int
    key_id: int
    email: str


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    full_key: str  # shown once, never stored


def hash_key(full_key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(full_key.encode()).hexdigest()


def generate_key() -> str:
    """A fresh random API key."""
    return KEY_PREFIX + "".join(secrets.choice(_BASE62) for _ in range(KEY_BODY_LENGTH))


def default_login_key_name() -> str:
    """The name of the key minted by a sign-in: login-<date>."""
    return f"login-{datetime.now(UTC).date().isoformat()}"


def create_key(user_id: int, name: str = "") -> NewKey:
    """Mint a key for a user; the full key is only in the returned value."""
    clean = clean_name(name, "name", MAX_KEY_NAME)
    full_key = generate_key()
    prefix = full_key[: len(KEY_PREFIX) + 4]
    with write_transaction():
        key = ApiKey.create(
            user=user_id, name=clean, key_prefix=prefix, key_hash=hash_key(full_key)
        )
    return NewKey(key, full_key)


def key_view(key: ApiKey) -> dict[str, Any]:
    """A key as the API and the CLI show it (never the full key)."""
    return {
        "id": key.id,
        "key_prefix": key.key_prefix,
        "name": key.name,
        "created_at": iso_z(key.created_at),
        "last_used_at": iso_z(key.last_used_at),
    }


def list_keys(user_id: int) -> list[ApiKey]:
    """The user's active keys, oldest first."""
    query = ApiKey.select().where(ApiKey.user == user_id, ApiKey.revoked_at.is_null())
    return list(query.order_by(ApiKey.id))


def revoke_key(key_id: int, user_id: int | None = None) -> ApiKey:
    """Revoke a key (only the user's own when `user_id` is given); it fails at once after."""
    if not 0 < key_id <= MAX_SQLITE_INTEGER:  # no key has such an id (nor can SQLite bind it)
        raise NotFound(f"no active API key with id {key_id}", code="key_not_found")
    query = ApiKey.select().where(ApiKey.id == key_id, ApiKey.revoked_at.is_null())
    if user_id is not None:
        query = query.where(ApiKey.user == user_id)
    with write_transaction():  # looked up and revoked at once: of two revokes, one finds it
        key = query.first()
        if key is None:
            raise NotFound(f"no active API key with id {key_id}", code="key_not_found")
        ApiKey.update(revoked_at=utcnow()).where(ApiKey.id == key.id).execute()
    return key


_AUTH_SQL = (
    "SELECT k.id, k.key_hash, k.last_used_at, u.id, u.email, u.status FROM api_key k "
    'JOIN "user" u ON u.id = k.user_id WHERE k.key_hash = ? AND k.revoked_at IS NULL'
)
_LAST_USED_INTERVAL = timedelta(seconds=LAST_USED_WRITE_INTERVAL_SEC)


def authenticate(full_key: str | None) -> AuthContext:
    """The owner of a presented key; 401 for a missing/unknown/revoked key, 403 if disabled."""
    if not full_key or not full_key.startswith(KEY_PREFIX):
        raise AuthenticationFailed(
            "missing or malformed API key: send Authorization: Bearer cl_..."
        )
    presented = hash_key(full_key)
    row = query_one(_AUTH_SQL, (presented,))  # a prepared statement, cached by its text
    if row is None or not hmac.compare_digest(row[1], presented):
        raise AuthenticationFailed("invalid or revoked API key")
    key_id, _, last_used, user_id, email, status = row
    if status != "active":
        raise PermissionDenied("this account is disabled", code="account_disabled")
    _note_key_used(int(key_id), last_used)
    return AuthContext(user_id=int(user_id), key_id=int(key_id), email=email)


def _note_key_used(key_id: int, last_used: str | datetime | None) -> None:
    """Record the use unless the stored last_used_at is less than a minute old."""
    now = utcnow()
    if last_used is not None:
        previous = last_used if isinstance(last_used, datetime) else _parse_db_time(last_used)
        if previous is not None and now - previous < _LAST_USED_INTERVAL:
            return
    with write_transaction():
        ApiKey.update(last_used_at=now).where(ApiKey.id == key_id).execute()


def _parse_db_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
