"""User accounts: creation, lookup, enable/disable, profile. Emails are stored normalised."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import idna
from peewee import IntegrityError, fn

from codelace_box.accounts.domain_display import shown_in_unicode
from codelace_box.db.core import durable, exclusive, utcnow, write_transaction
from codelace_box.db.ids import one_by_prefix, uuid_prefix
from codelace_box.db.models import AccountUsage, ApiKey, PortalSession, User
from codelace_box.errors import Conflict, InvalidRequest, NotFound, PermissionDenied

_EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
MAX_EMAIL_LENGTH = 254
MAX_LOCAL_PART_LENGTH = 64
# The most characters an address may be typed with: more than it is stored with (fullwidth
# forms, an IDN domain in Unicode, characters IDNA drops), never four times more. Longer input
# is refused before it is folded: IDNA encoding costs about 3 us a character, so one
# unauthenticated code request holding megabytes of a domain held its worker for seconds.
MAX_TYPED_EMAIL_LENGTH = 4 * MAX_EMAIL_LENGTH
MAX_DISPLAY_NAME = 100
# Characters that would let a name rewrite the operator's terminal or screen (`users show`,
# `keys list`, the admin): controls (ESC, CR/LF, tab, NUL, C1), line and paragraph separators,
# and the bidirectional marks, embeddings, overrides and isolates.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_UNSAFE_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})


class AccountDisabled(PermissionDenied):
    """403 for a key of a disabled account. The key did authenticate: `whose` is its identity
    (AuthContext), for the access line to name whose request was refused, never to serve."""

    def __init__(self, whose: Any) -> None:
        super().__init__("this account is disabled", code="account_disabled")
        self.whose = whose


def normalize_email(raw: object) -> str:
    """NFKC-folded, trimmed, lower-cased, an IDN domain in its ASCII (punycode) form, and
    validated (RFC 5321 lengths); raises InvalidRequest on anything not an email."""
    if not isinstance(raw, str):
        raise InvalidRequest("email must be a string", code="invalid_email", param="email")
    typed = raw.strip()
    if len(typed) > MAX_TYPED_EMAIL_LENGTH:
        raise InvalidRequest(
            f"not a valid email address: longer than {MAX_EMAIL_LENGTH} characters",
            code="invalid_email",
            param="email",
        )
    local, at, domain = unicodedata.normalize("NFKC", typed).strip().rpartition("@")
    email = f"{local}{at}{ascii_domain(domain)}".lower()
    if (
        len(email) > MAX_EMAIL_LENGTH
        or len(local) > MAX_LOCAL_PART_LENGTH
        or not _EMAIL_RE.match(email)
    ):
        raise InvalidRequest(
            f"not a valid email address: {raw.strip()[:80]!r}{_why_not(local)}",
            code="invalid_email",
            param="email",
        )
    return email


def _why_not(local: str) -> str:
    """What to do about a mailbox name beyond ASCII (RFC 6531): it needs SMTPUTF8 of every
    mail server on the way, which the box does not ask for."""
    if local.isascii():
        return ""
    return (
        "; the part before the @ must be ASCII here (letters such as é or ü there need "
        "international mail, which this box does not send): use another address"
    )


def ascii_domain(domain: str) -> str:
    """An internationalised domain as registries and mail servers take it: IDNA 2008 with the
    UTS #46 (non-transitional) mapping. Python's own "idna" codec is IDNA 2003, which turns
    `straße.de` into strasse.de, another domain (the code went to someone else's mailbox);
    here it is xn--strae-oqa.de. Others unchanged."""
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        return domain  # not a domain IDNA 2008 allows: the pattern refuses it


def shown_email(address: str) -> str:
    """A stored address as a person reads it: an IDN domain, kept in its ASCII form
    (`xn--bcher-kva.example`, what mail servers take and `--json` and the API give), in
    Unicode (`bücher.example`) for tables and pages, unless it could pass for another domain
    (`apple.com` with a Cyrillic "a", U+0430; accounts/domain_display.py): that domain stays
    in its ASCII form. Anything IDNA 2008 does not decode (or no domain of that kind)
    unchanged."""
    local, at, domain = address.rpartition("@")
    if "xn--" not in domain:
        return address
    try:
        shown = idna.decode(domain)
    except (idna.IDNAError, UnicodeError):
        return address
    return f"{local}{at}{shown}" if shown_in_unicode(shown.split(".")) else address


def search_form(text: str) -> str:
    """Part of an address as the operator types it (`bücher`, `ｂüｃｈｅｒ.de`) in the form
    addresses are stored in: NFKC-folded, lower-cased, each label of the domain beyond ASCII
    in its ASCII form (xn--bcher-kva), so a search finds what it names."""
    folded = unicodedata.normalize("NFKC", text).strip().lower()
    if folded.isascii():
        return folded
    local, at, domain = folded.rpartition("@")
    labels = (label if label.isascii() else ascii_domain(label) for label in domain.split("."))
    return f"{local}{at}{'.'.join(labels)}"


def create_user(email: str, *, created_by_admin: bool = False) -> User:
    """Create an account; Conflict if the email already has one."""
    address = normalize_email(email)
    try:
        with write_transaction():
            return User.create(email=address, created_by_admin=created_by_admin)
    except IntegrityError:
        raise Conflict(f"a user with email {address} already exists", code="user_exists") from None


def get_or_create_user(email: str) -> tuple[User, bool]:
    """The account for an email, created if missing; (user, created)."""
    address = normalize_email(email)
    with write_transaction() as tx:
        exclusive(tx, f"user:{address}")  # two boxes signing in one new email: one creates
        user = User.get_or_none(User.email == address)
        if user is not None:
            return user, False
        return User.create(email=address), True


def find_user(email: str) -> User | None:
    """The account of an email, or None."""
    return User.get_or_none(User.email == normalize_email(email))


def get_user(email: str) -> User:
    """The account of an email; NotFound if there is none."""
    user = find_user(email)
    if user is None:
        raise NotFound(f"no user with email {normalize_email(email)}", code="user_not_found")
    return user


def get_account(ref: str) -> User:
    """The account an operator names: by email, or (no '@') by its UUID or a unique start of
    it, as the CLI shows them. NotFound if none; Conflict naming them if several match; an
    old integer id (a few digits) of another account is refused, not taken as a prefix."""
    prefix = uuid_prefix(ref) if "@" not in ref else None
    if prefix is None:
        return get_user(ref)
    old_id = InvalidRequest(
        f"user id {ref.strip()!r} looks like an old numeric id: user ids are UUIDs now "
        "(see `users list`); give the email, the UUID or at least its first 8 characters",
        code="invalid_user_id",
    )
    query = User.select().where(User.uuid.startswith(prefix))
    user: User | None = one_by_prefix(query, prefix, "user id", "ambiguous_user_id", old_id)
    if user is None:
        raise NotFound(f"no user with email or id {prefix!r}", code="user_not_found")
    return user


def get_user_by_id(user_id: int) -> User:
    """The account with this id; NotFound if there is none."""
    user = User.get_or_none(User.id == user_id)
    if user is None:
        raise NotFound("the account does not exist", code="user_not_found")
    return user


def set_user_status(email: str, status: str) -> User:
    """Enable ('active') or disable ('disabled') an account; its keys follow at once. Disabling
    also ends its portal sessions for good (only their holders could end them otherwise, and a
    session mints keys): enabling the account again brings none of them back. Committed with an
    fsync (`durable()`): an account disabled must not be enabled again by a crash of the
    database right after."""
    if status not in ("active", "disabled"):
        raise InvalidRequest(f"unknown status {status!r}")
    user = get_user(email)
    with durable():
        User.update(status=status).where(User.id == user.id).execute()
        if status == "disabled":
            PortalSession.delete().where(PortalSession.user == user.id).execute()
    user.status = status
    return user


def require_enabled(user: User, enable_hint: str) -> User:
    """The account, unless it is disabled: its requests are a 403, so a key made for it could
    not be used (`enable_hint`: how the caller enables it)."""
    if user.status == "disabled":
        raise PermissionDenied(
            f"{user.email} is disabled: a key made for it could not be used ({enable_hint})",
            code="account_disabled",
        )
    return user


def clean_name(value: object, param: str, max_length: int) -> str:
    """A display or key name, trimmed; 400 unless a string of printable text within the limit."""
    if not isinstance(value, str) or len(value.strip()) > max_length:
        raise InvalidRequest(
            f"{param} must be a string of at most {max_length} characters", param=param
        )
    if any(_unsafe_char(ch) for ch in value):
        raise InvalidRequest(
            f"{param} must not contain control characters, line breaks or direction marks",
            param=param,
        )
    return value.strip()


def _unsafe_char(ch: str) -> bool:
    return ch in _BIDI_CONTROLS or unicodedata.category(ch) in _UNSAFE_CATEGORIES


def set_display_name(user_id: int, display_name: object) -> User:
    """Change the name shown for an account."""
    name = clean_name(display_name, "display_name", MAX_DISPLAY_NAME)
    with write_transaction():
        User.update(display_name=name).where(User.id == user_id).execute()
    return get_user_by_id(user_id)


def touch_last_seen(user_id: int) -> None:
    """Record that the account was active now."""
    with write_transaction():
        User.update(last_seen_at=utcnow()).where(User.id == user_id).execute()


@dataclass(frozen=True)
class UserSummary:
    user: User
    active_keys: int  # keys that work: neither revoked nor past their expiry
    request_count: int


def list_users(search: str = "", limit: int = 1000) -> list[UserSummary]:
    """Accounts (optionally whose email contains `search`, or whose id starts with it, as the
    access log and `users show` name one), with their active keys (an expired key works no
    more: not counted) and request counts."""
    query = User.select().order_by(User.id)
    text = search.strip().lower()
    if text:
        stored = search_form(text)
        if min(len(text), len(stored)) > MAX_EMAIL_LENGTH:  # no address is so long (and
            return []  # SQLite's LIKE refuses a pattern past 50,000 characters)
        query = query.where(
            User.email.contains(text) | User.email.contains(stored) | User.uuid.startswith(text)
        )
    users = list(query.limit(limit))
    ids = [u.id for u in users]
    keys: dict[int, int] = dict(
        ApiKey.select(ApiKey.user, fn.COUNT(ApiKey.id))
        .where(ApiKey.user.in_(ids), ApiKey.revoked_at.is_null())
        .where(ApiKey.expires_at.is_null() | (ApiKey.expires_at > utcnow()))
        .group_by(ApiKey.user)
        .tuples()  # type: ignore[arg-type]
    )
    requests: dict[int, int] = dict(
        AccountUsage.select(AccountUsage.user, AccountUsage.requests)
        .where(AccountUsage.user.in_(ids))
        .tuples()  # type: ignore[arg-type]
    )
    return [UserSummary(u, keys.get(u.id, 0), requests.get(u.id, 0)) for u in users]
