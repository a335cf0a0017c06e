"""A top-up session's signed claim: the account and amount its metadata carries under this
box's `topup_tag`, for a paid session whose pending payment row is missing here.

The row is written before the checkout URL is shown (checkout.py); it is missing when the
database was restored from a backup older than the session. The claim, checked with the box's
own secret, recreates it, so the paid session is credited exactly once (the credit's ledger
key is the session's) to the account that started it. A session with no tag, a wrong one
(another box on the same Stripe account, or edited metadata), or an account that no longer
exists recreates nothing: it stays `unknown_session`.
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
    if not hmac.compare_digest(str(metadata.get(METADATA_BOX, "")), expected):
        return None
    nanos = int(amount) * 10 ** (9 - minor_unit_exponent(currency))
    return TopupClaim(int(user), nanos, currency)


def restore_topup(session_id: str, claim: TopupClaim | None) -> Payment | None:
    """The missing pending row of a paid top-up session, recreated from its claim; inside
    the write transaction that credits it. None without a claim or an account."""
    if claim is None or User.get_or_none(User.id == claim.user_id) is None:
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
