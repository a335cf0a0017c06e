"""Signing in with an emailed code: request a code, verify it, get an account and an API key.

`request_sign_in` answers the same whether or not the account exists or could be created;
the signup policy (open / domains / invite) and a disabled account are enforced only at
`complete_sign_in`, after the code proved the caller owns the address. Both steps are rate
limited per email and per client address (the `auth.otp_*_per_*` counts in any
`auth.rate_limit_window_sec`, and per email in any 24 hours), in the database, so all workers
share the count. Code requests count per mailbox: `a+1@x` and `a+2@x` reach the same inbox,
so they share `a@x`'s budget of mails (each is still its own account), and so do the dotted
spellings of a Gmail address. The codes the whole box mails in an hour are capped too
(`auth.otp_codes_per_hour`, code_cap.py). A mail the server did not take is given back to
its mailbox's budgets and the box's cap (nobody got it; after a mail outage the person gets a
code at once), not to the client address's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from peewee import IntegrityError

from codelace_box.accounts import otp
from codelace_box.accounts.code_cap import box_limits, note_refusal
from codelace_box.accounts.keys import create_key, default_login_key_name
from codelace_box.accounts.mailer import Mailer
from codelace_box.accounts.ratelimit import MAX_WINDOW_SEC, Limit, LimitsReached, give_back, hit
from codelace_box.accounts.users import normalize_email, touch_last_seen
from codelace_box.config import AuthConfig
from codelace_box.db.core import write_transaction
from codelace_box.db.models import User
from codelace_box.db.offload import run_db_work
from codelace_box.errors import PermissionDenied


@dataclass(frozen=True)
class CodeSent:
    email: str
    expires_in_sec: int


@dataclass(frozen=True)
class SignedIn:
    user: User
    api_key: str  # the full key, shown once
    created: bool


DAY_SEC = MAX_WINDOW_SEC  # 24 hours: the daily cap's window, as much history as is kept
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})  # they ignore a local part's dots


def mailbox(email: str) -> str:
    """The inbox an address reaches: without the `+tag` of its local part (`a+1@x` is `a@x`),
    and at Gmail without its dots too (`a.b@gmail.com` is `ab@gmail.com`)."""
    local, _, domain = email.rpartition("@")
    base = local.partition("+")[0]
    if domain in GMAIL_DOMAINS:
        base, domain = base.replace(".", ""), "gmail.com"
    return f"{base}@{domain}" if base else email


def request_limits(email: str, client: str, auth: AuthConfig) -> list[Limit]:
    """The limits one code request counts against: per mailbox (in a window, in a day), the
    box's cap on mails (if set), and last per client address (a mail not sent is given back
    to all but that last one)."""
    what, window = "sign-in code requests", auth.rate_limit_window_sec
    inbox = mailbox(email)
    return [
        Limit(
            f"otp-request:email:{inbox}", auth.otp_requests_per_email, window, f"{what} for {inbox}"
        ),
        Limit(  # five a window without end were 720 mails a day into one inbox
            f"otp-request-day:email:{inbox}",
            auth.otp_requests_per_email_per_day,
            DAY_SEC,
            f"{what} for {inbox} in 24 hours",
        ),
        *box_limits(auth),
        Limit(
            f"otp-request:addr:{client}", auth.otp_requests_per_address, window, f"{what} from here"
        ),
    ]


def verify_limits(email: str, client: str, auth: AuthConfig) -> list[Limit]:
    """The limits one verify attempt counts against (per email, per client address)."""
    what, window = "sign-in attempts", auth.rate_limit_window_sec
    return [
        Limit(
            f"otp-verify:email:{email}", auth.otp_verifies_per_email, window, f"{what} for {email}"
        ),
        Limit(
            f"otp-verify:addr:{client}", auth.otp_verifies_per_address, window, f"{what} from here"
        ),
        Limit(  # ten a window without end were 1,440 guesses a day at one account's code
            f"otp-verify-day:email:{email}",
            auth.otp_verifies_per_email_per_day,
            DAY_SEC,
            f"{what} for {email} in 24 hours",
        ),
    ]


async def request_sign_in(
    raw_email: object, client: str, *, mailer: Mailer, secret_key: str, auth: AuthConfig
) -> CodeSent:
    """Mail a fresh code (replacing any earlier one); a code whose mail failed is deleted and
    the earlier one stays.
    Its database work runs off the event loop on PostgreSQL (db/offload.py run_db_work)."""
    email = normalize_email(raw_email)
    ttl_sec = auth.otp_ttl_sec
    code = otp.generate_code()
    stored, mailed = await run_db_work(_counted_code, email, client, code, secret_key, auth)
    # Shielded: a client that leaves does not stop the mail's tries (a greylisted one is tried
    # again), nor the undoing of a mail that failed in the end.
    sending = asyncio.ensure_future(_send_or_undo(mailer, code, ttl_sec, stored, mailed))
    sending.add_done_callback(_retrieved)
    await asyncio.shield(sending)
    return CodeSent(email, ttl_sec)


async def _send_or_undo(
    mailer: Mailer, code: str, ttl_sec: int, stored: otp.StoredCode, mailed: list[int]
) -> None:
    """Mail the code; if that fails, the code must not stay usable, nor count as a mail to
    the mailbox."""
    try:
        await mailer.send_code(stored.email, code, ttl_sec)
    except Exception:
        await run_db_work(_not_sent, stored, mailed)
        raise


def _retrieved(sending: asyncio.Future[None]) -> None:
    """Take a left request's mail failure (logged by the mailer) so asyncio does not log it."""
    if not sending.cancelled():
        sending.exception()


def _counted_code(
    email: str, client: str, code: str, secret_key: str, auth: AuthConfig
) -> tuple[otp.StoredCode, list[int]]:
    """Count the request against its limits (429 past them), then store `code`: the stored
    code and the ids of the events that counted it as a mail (all but the client address's)."""
    try:
        counted = hit(request_limits(email, client, auth))
    except LimitsReached as refused:
        note_refusal(refused, auth)
        raise
    return otp.store_code(secret_key, email, code, auth.otp_ttl_sec), counted[:-1]


def _not_sent(stored: otp.StoredCode, mailed: list[int]) -> None:
    """A code whose mail failed: deleted (the one before it back), and uncounted from its
    mailbox's budgets and the box's cap."""
    otp.discard_code(stored)
    give_back(mailed)


def complete_sign_in(
    raw_email: object, raw_code: object, client: str, *, secret_key: str, auth: AuthConfig
) -> SignedIn:
    """Check the code, then the account (created if the policy allows), and mint a login key."""
    user, created = verify_code(raw_email, raw_code, client, secret_key=secret_key, auth=auth)
    new_key = create_key(user.id, default_login_key_name())
    return SignedIn(user, new_key.full_key, created)


def verify_code(
    raw_email: object, raw_code: object, client: str, *, secret_key: str, auth: AuthConfig
) -> tuple[User, bool]:
    """Check the code, then the account (created if the policy allows); mints nothing (the
    portal's sign-in starts a session with it instead). (user, created)."""
    email = normalize_email(raw_email)
    code = otp.parse_code(raw_code)
    hit(verify_limits(email, client, auth))
    otp.consume_code(secret_key, email, code)
    user, created = _account_for(email, auth)
    if user.status != "active":
        raise PermissionDenied(
            "this account is disabled: ask an administrator", code="account_disabled"
        )
    touch_last_seen(user.id)
    return user, created


def _account_for(email: str, auth: AuthConfig) -> tuple[User, bool]:
    """The account of `email`, created if the policy allows. Another writer (`users create`,
    the dashboard, a sign-in on another box) may create it between the look and the insert
    (PostgreSQL: its insert waits for theirs, then meets the unique email): that account."""
    try:
        with write_transaction():
            user = User.get_or_none(User.email == email)
            if user is not None:
                return user, False
            check_signup_allowed(email, auth)
            return User.create(email=email), True
    except IntegrityError:
        user = User.get_or_none(User.email == email)
        if user is None:
            raise
        return user, False


def check_signup_allowed(email: str, auth: AuthConfig) -> None:
    """403 signup_not_allowed unless the policy lets this new address create an account."""
    if auth.signup == "open":
        return
    if auth.signup == "domains":
        domain = email.rpartition("@")[2]
        allowed = {d.strip().lower().lstrip("@") for d in auth.allowed_email_domains}
        if domain in allowed:
            return
        raise PermissionDenied(
            f"sign-up is limited to addresses at {', '.join(sorted(allowed)) or 'no domain'}; "
            f"{domain} is not one of them",
            code="signup_not_allowed",
        )
    raise PermissionDenied(
        "sign-up is by invitation only: ask an administrator to create your account",
        code="signup_not_allowed",
    )
