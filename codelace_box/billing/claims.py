"""A top-up session's signed claim: the account and amount its metadata carries under this
box's `topup_tag`, for a paid session whose pending payment row is missing here.

The row is written before the checkout URL is shown (checkout.py); it is missing when the
database was restored from a backup older than the session. The claim, checked with the box's
own secret, recreates it, so the paid session is credited exactly once (the credit's ledger
key is the session's) to the account that started it. A session with no tag, a wrong one
(another box on the same Stripe account, or edited metadata), or an account that no longer
exists recreates nothing: it stays `unknown_session`. Nor does an account that is not the
one the session was made for (its email, the session's `customer_email`): a database restored
from a backup older than the account has forgotten it, and the next account signed up takes
its number, which the tag names.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Any

from codelace_box.billing.checkout import (
    METADATA_AMOUNT,
    METADATA_BOX,
    METADATA_CURRENCY,
    METADATA_KIND,
    METADATA_USER,
    minor_unit_exponent,
    topup_tag,
)
from codelace_box.db.models import Payment, User

log = logging.getLogger("codelace_box.billing.claims")


@dataclass(frozen=True)
class TopupClaim:
    user_id: int
    nanos: int  # the amount asked for, nano-USD (one currency unit per USD)
    currency: str
    email: str  # the account's email, which the box gave Stripe as the session's customer_email


def carries_tag(metadata: dict[str, Any], expected: str) -> bool:
    """Whether a session's metadata carries the tag `expected` (in constant time). Compared as
    UTF-8 bytes: `hmac.compare_digest` raises on text that is not ASCII (a 500 Stripe retries
    for days), and such a tag is no tag of ours."""
    given = str(metadata.get(METADATA_BOX, "")).encode("utf-8", "surrogatepass")
    return hmac.compare_digest(given, expected.encode())


def topup_claim(session: dict[str, Any], box_secret: str) -> TopupClaim | None:
    """The claim of a payment-mode session this box created, if its tag proves it."""
    metadata = session.get("metadata")
    if session.get("mode") != "payment" or not isinstance(metadata, dict) or not box_secret:
        return None
    if metadata.get(METADATA_KIND) != "topup":
        return None
    user, amount = str(metadata.get(METADATA_USER, "")), str(metadata.get(METADATA_AMOUNT, ""))
    currency = str(metadata.get(METADATA_CURRENCY, "")).lower()
    ascii_digits = (user + amount + currency).isascii()  # "²".isdigit(), but int() refuses it
    if not (ascii_digits and user.isdigit() and amount.isdigit() and currency.isalpha()):
        return None
    if user != str(session.get("client_reference_id")):
        return None
    expected = topup_tag(box_secret, int(user), int(amount), currency)
    if not carries_tag(metadata, expected):
        return None
    nanos = int(amount) * 10 ** (9 - minor_unit_exponent(currency))
    email = session.get("customer_email")
    return TopupClaim(int(user), nanos, currency, email if isinstance(email, str) else "")


def restore_topup(session_id: str, claim: TopupClaim | None) -> Payment | None:
    """The missing pending row of a paid top-up session, recreated from its claim; inside
    the write transaction that credits it. None without a claim, or when the account of its
    number is not the one the session was made for (or no longer exists)."""
    if claim is None:
        return None
    user = User.get_or_none(User.id == claim.user_id)
    if user is None or not claim.email or claim.email.casefold() != user.email.casefold():
        log.error(
            "Checkout Session %s has no payment row here and its signed metadata names account "
            "%s, which is not here or not the account the session was made for (a database "
            "restored from a backup older than that account?): credited to nobody",
            session_id,
            claim.user_id,
        )
        return None
    log.warning(
        "Checkout Session %s has no payment row here (a database older than the session?); "
        "its signed metadata names account %s: recreating it",
        session_id,
        claim.user_id,
    )
    return Payment.create(
        user=claim.user_id,
        amount_nanos=claim.nanos,
        kind="topup",
        status="pending",
        stripe_session_id=session_id,
        currency=claim.currency,
    )


def made_for(session: dict[str, Any], user: User) -> bool:
    """Whether a setup session was made for this account: its `customer_email`, when it
    carries one, is the account's. An account of the number the session's tag names may be
    another: a database restored from a backup older than the session's account gives that
    number to the next account signed up."""
    email = session.get("customer_email")
    if not isinstance(email, str):
        return True
    if email.casefold() == user.email.casefold():
        return True
    log.error(
        "setup Checkout Session %s names account %s, which is not the account it was made for "
        "(a database restored from a backup older than that account?): no trial",
        *(str(session["id"])[:100], user.id),
    )
    return False
