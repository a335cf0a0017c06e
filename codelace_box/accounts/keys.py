"""API keys: `cl_` + 40 base62 characters from `secrets`, stored only as a SHA-256 hash.

`authenticate()` is on every request's path: one indexed lookup joined to the user, so a key
revoked or a user disabled by another process stops working on the very next request; an
expired key is a 401 `key_expired`. The lookup also brings the key's model allow-list and the
account's limits (accounts/limits.py), which the inference routes enforce, and whether the key
may manage the account's keys (`can_manage_keys`, which the key routes enforce): on SQLite kept
with its row only while nothing that could change it was committed since (db/keycache.py: any
other connection's commit, or this connection's write to a looked-up column, is seen at the
next lookup), on PostgreSQL read on every request; a change through any process holds from the
next request on.
`last_used_at` is written at most once a minute per key, not on every request: the lookup
reads it, and only a value older than a minute (in any process) leads to a write, one that
never waits for the key's row (db/hotpath.py: skipped while another holds it). A request's
handler calls `authenticated()`: on PostgreSQL both run on the lookup thread, batched with other
requests' lookups (db/lookups.py), not on the event loop.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from codelace_box.accounts.key_room import check_room_for_a_key
from codelace_box.accounts.limits import (
    apply_key_limits,
    new_key_period,
    parse_allowed,
    parse_key_limits,
)
from codelace_box.accounts.users import AccountDisabled, clean_name
from codelace_box.db.core import (
    connection,
    db_time,
    durable,
    exclusive,
    parse_time,
    utcnow,
    write_transaction,
)
from codelace_box.db.failures import traceback_of
from codelace_box.db.hotpath import key_owners, note_key_used
from codelace_box.db.ids import canonical_uuid, one_by_prefix, uuid_prefix
from codelace_box.db.keycache import current_key_owner
from codelace_box.db.lookups import lookups_batched, run_lookups
from codelace_box.db.models import ApiKey
from codelace_box.errors import (
    AuthenticationFailed,
    CodelaceError,
    InvalidRequest,
    NotFound,
    PermissionDenied,
)

log = logging.getLogger("codelace_box.accounts")
KEY_PREFIX = "cl_"
KEY_BODY_LENGTH = 40
_BASE62 = string.ascii_letters + string.digits
MAX_KEY_NAME = 100
# A box key in a name (a full key pasted as a key's name was shown in every list): `cl_` and
# more characters of one than a key's shown prefix has (16 or more; a key has 40), random
# ones: letters of both cases (`cl_productionserver` is a word, a name)
_KEY_IN_NAME = re.compile(
    r"(?<![A-Za-z0-9])cl_(?=[A-Za-z0-9]*[a-z])(?=[A-Za-z0-9]*[A-Z])[A-Za-z0-9]{16,}"
)
LAST_USED_WRITE_INTERVAL_SEC = 60.0


# Not frozen: made for every call, and a frozen dataclass's __init__ sets each field through
# object.__setattr__ (about 1,300 instructions a field); nothing changes one once made.
@dataclass
class AuthContext:
    """Who a request is from."""

    user_id: int
    key_id: int
    email: str
    allowed_models: frozenset[str] | None = None  # catalog ids; None: every model
    rpm: int | None = None  # the account's own limits (None: the [limits] defaults)
    max_concurrent: int | None = None
    key_budgeted: bool = True  # the key had a cap or a reset at the lookup (admission's guess)
    user_uuid: str = ""  # the account's public id (as otp/verify and /auth/me show it)
    can_manage_keys: bool = True  # the key may create, change and revoke the account's keys


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


def create_key(
    user_id: int,
    name: str = "",
    limits: Mapping[str, Any] | None = None,
    *,
    relative: bool = False,
    capped: bool = False,
) -> NewKey:
    """Mint a key for a user, with the limit fields given (limit_usd, limit_reset, expires_at,
    allowed_models, can_manage_keys: raw values, checked here); the full key is only in the
    returned value. `capped`: the account's own request, held to MAX_ACTIVE_KEYS, counted in
    the key's transaction under the account's lock (several at once, on any worker or box,
    would otherwise each count the room one key left).
    Committed with an fsync (`durable()`): it is shown once, so a database crash right after
    must not lose it (inside a transaction, that one must be durable: the CLI's audited one)."""
    clean = key_name(name)
    now = utcnow()
    changes = parse_key_limits(limits or {}, now, relative=relative)
    full_key = generate_key()
    prefix = full_key[: len(KEY_PREFIX) + 4]
    with durable():
        if capped:
            exclusive(connection(), f"keys:{user_id}")
            check_room_for_a_key(user_id)
        key = ApiKey.create(
            user=user_id, name=clean, key_prefix=prefix, key_hash=hash_key(full_key),
            period_start=new_key_period(changes, now), **changes,
        )  # fmt: skip
    return NewKey(key, full_key)


def key_name(value: object) -> str:
    """A key's name, trimmed (clean_name's rules); 400 when it holds a box key: a name is shown
    in every list of keys, a key never."""
    name = clean_name(value, "name", MAX_KEY_NAME)
    if _KEY_IN_NAME.search(name):
        raise InvalidRequest(
            "name must not contain an API key (text shaped like cl_ and a key's characters): "
            "a key's name is shown in every list of keys",
            param="name",
        )
    return name


def require_key_management(auth: AuthContext) -> None:
    """403 `key_management_not_allowed` unless the request's key may manage the account's keys
    (creating, changing or revoking a key; changing the profile)."""
    if not auth.can_manage_keys:
        raise PermissionDenied(
            "this API key may not manage keys or the account (can_manage_keys is false): "
            "use a key that can, or the portal",
            code="key_management_not_allowed",
        )


def update_key(
    key_ref: str,
    fields: Mapping[str, Any],
    user_id: int | None = None,
    *,
    relative: bool = False,
    acting_key_id: int | None = None,
) -> ApiKey:
    """Change an active key's name and limits (absent fields unchanged, None clears a limit);
    by its UUID, only the user's own when `user_id` is given. Every field is checked before
    anything is written. `acting_key_id`: the key making the change (the HTTP API's), which may
    not change its own `can_manage_keys`."""
    key = _own_key(key_ref, user_id)
    changes = parse_key_limits(fields, relative=relative)
    flag = changes.get("can_manage_keys")
    if key.id == acting_key_id and flag is not None and flag != bool(key.can_manage_keys):
        raise PermissionDenied(
            "an API key cannot change its own can_manage_keys: use another key or the portal",
            code="key_management_not_allowed",
        )
    if "name" in fields:
        name = fields["name"]
        changes["name"] = key_name("" if name is None else name)
    return apply_key_limits(key, changes)


def _own_key(key_ref: str, user_id: int | None) -> ApiKey:
    """The active key with this UUID (of this user, when given); 404 otherwise."""
    wanted = canonical_uuid(key_ref)
    query = ApiKey.select().where(ApiKey.uuid == wanted, ApiKey.revoked_at.is_null())
    if user_id is not None:
        query = query.where(ApiKey.user == user_id)
    key = query.first() if wanted is not None else None
    if key is None:
        raise _no_such_key(key_ref)
    return key


def list_keys(user_id: int) -> list[ApiKey]:
    """The user's active keys, oldest first."""
    query = ApiKey.select().where(ApiKey.user == user_id, ApiKey.revoked_at.is_null())
    return list(query.order_by(ApiKey.id))


def revoke_key(key_uuid: str, user_id: int | None = None) -> ApiKey:
    """Revoke a key by its UUID (only the user's own when `user_id` is given); it fails at once
    after. Anything but the UUID of an active key (an old integer id, garbage) is a 404.
    Committed with an fsync (`durable()`): a key revoked because it leaked must not come back
    to life when the database recovers from a crash right after the revocation was answered."""
    wanted = canonical_uuid(key_uuid)
    if wanted is None:
        raise _no_such_key(key_uuid)
    query = ApiKey.select().where(ApiKey.uuid == wanted, ApiKey.revoked_at.is_null())
    if user_id is not None:
        query = query.where(ApiKey.user == user_id)
    with durable():  # looked up and revoked at once: of two revokes, one finds it
        key = query.first()
        if key is None:
            raise _no_such_key(key_uuid)
        revoked = ApiKey.update(revoked_at=utcnow()).where(
            ApiKey.id == key.id, ApiKey.revoked_at.is_null()
        )
        if revoked.execute() != 1:  # revoked meanwhile through another box
            raise _no_such_key(key_uuid)
    return key


def find_key(key_ref: str) -> ApiKey:
    """The active key whose UUID is `key_ref` or starts with it (the CLI's way to name a key).

    A prefix matching several active keys is an error naming them; an old integer id (digits,
    shorter than a UUID's first group) of another key is refused with a word on what ids are
    now."""
    prefix = uuid_prefix(key_ref)
    if prefix is None:
        raise _no_such_key(key_ref)
    old_id = InvalidRequest(
        f"key id {key_ref.strip()!r} looks like an old numeric id: key ids are UUIDs now "
        "(see `keys list EMAIL`); give the UUID or at least its first 8 characters",
        code="invalid_key_id",
    )
    query = ApiKey.select().where(ApiKey.uuid.startswith(prefix), ApiKey.revoked_at.is_null())
    key: ApiKey | None = one_by_prefix(query, prefix, "key id", "ambiguous_key_id", old_id)
    if key is None:
        raise _no_such_key(key_ref)
    return key


def _no_such_key(key_ref: str) -> NotFound:
    """The 404 of a key id that names no active key; the id is quoted only when it looks like
    one (never, say, a full key pasted by mistake)."""
    shown = key_ref.strip() if uuid_prefix(key_ref) is not None else None
    named = f"id {shown!r}" if shown else "that id"
    return NotFound(f"no active API key with {named}", code="key_not_found")


_LAST_USED_INTERVAL = timedelta(seconds=LAST_USED_WRITE_INTERVAL_SEC)


def authenticate(full_key: str | None) -> AuthContext:
    """The owner of a presented key; 401 for a missing/unknown/revoked key, 403 if disabled."""
    presented = _presented_hash(full_key)
    return _admitted(current_key_owner(presented, _known))


async def authenticated(full_key: str | None) -> AuthContext:
    """`authenticate()` as a request's handler calls it: on PostgreSQL its lookup (and the
    last-used write) runs on the lookup thread, batched with other requests' (db/lookups.py),
    so the event loop serves other requests meanwhile; on SQLite here."""
    if not lookups_batched():
        return authenticate(full_key)
    return await run_lookups(authenticate_many, full_key)


def authenticate_many(full_keys: Sequence[str | None]) -> list[AuthContext | CodelaceError]:
    """`authenticate()` of several presented keys with one lookup: for each, its owner or the
    error it gets."""
    presented: list[str | CodelaceError] = []
    for full_key in full_keys:
        try:
            presented.append(_presented_hash(full_key))
        except CodelaceError as refused:
            presented.append(refused)
    rows = key_owners(connection(), sorted({p for p in presented if isinstance(p, str)}))
    outcomes: list[AuthContext | CodelaceError] = []
    for key_hash in presented:
        if isinstance(key_hash, CodelaceError):
            outcomes.append(key_hash)
            continue
        try:
            outcomes.append(_owner_context(key_hash, rows.get(key_hash)))
        except CodelaceError as refused:
            outcomes.append(refused)
    return outcomes


def _presented_hash(full_key: str | None) -> str:
    """The hash to look a presented key up by (401 when it is no key of ours at all: bytes
    that are no text, which a header can carry, included)."""
    if not full_key or not full_key.startswith(KEY_PREFIX) or not full_key.isascii():
        raise AuthenticationFailed(
            "missing or malformed API key: a box key starts with cl_; send it as "
            "Authorization: Bearer cl_... (on /v1/messages also as x-api-key: cl_...)"
        )
    return hash_key(full_key)


class _KnownKey:
    """A looked-up key as its requests check it, its row read once (on SQLite kept with the
    row while it is current: db/keycache.py, so its AuthContext is shared by its requests)."""

    __slots__ = ("active", "auth", "expires", "last_used")

    def __init__(self, row: tuple[Any, ...]) -> None:
        key_id, _, last_used, user_id, email, status, expires, allowed, rpm, concurrent, *rest = row
        budget, user_uuid, may_manage = rest
        self.expires = None if expires is None else parse_time(expires)
        self.active = status == "active"
        self.last_used = _last_used_at(last_used)
        models = parse_allowed(allowed)
        self.auth = AuthContext(
            user_id=int(user_id), key_id=int(key_id), email=email,
            allowed_models=None if models is None else frozenset(models),
            rpm=rpm, max_concurrent=concurrent, key_budgeted=bool(budget),
            user_uuid=str(user_uuid), can_manage_keys=bool(may_manage),
        )  # fmt: skip


def _known(presented: str, row: tuple[Any, ...]) -> _KnownKey | None:
    """The key of a looked-up row (None: not the presented key's)."""
    return _KnownKey(row) if hmac.compare_digest(row[1], presented) else None


def _owner_context(presented: str, row: tuple[Any, ...] | None) -> AuthContext:
    """The caller of a looked-up key (401 unknown, revoked or expired; 403 disabled)."""
    return _admitted(None if row is None else _known(presented, row))


def _admitted(known: _KnownKey | None) -> AuthContext:
    """The caller of a found key (401 unknown, revoked or expired; 403 disabled), its use
    noted unless the stored last_used_at is less than a minute old."""
    if known is None:
        raise AuthenticationFailed("invalid or revoked API key")
    now = utcnow()
    if known.expires is not None and known.expires <= now:
        raise AuthenticationFailed("this API key has expired", code="key_expired")
    if not known.active:
        raise AccountDisabled(known.auth)
    auth = known.auth
    if known.last_used is None or now - known.last_used >= _LAST_USED_INTERVAL:
        try:
            with write_transaction() as tx:  # skipped while another holds the key's row
                note_key_used(tx, auth.key_id, db_time(now))
        except Exception as exc:  # bookkeeping: never the request's failure; noted again later
            log.warning(
                "recording the use of key %s failed: %s",
                auth.key_id, exc, exc_info=traceback_of(exc),
            )  # fmt: skip
    return auth


def _last_used_at(value: str | datetime | None) -> datetime | None:
    """A stored last_used_at (None: never, or unreadable: noted at the next use)."""
    if value is None or isinstance(value, datetime):
        return value
    return _parse_db_time(value)


def _parse_db_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
