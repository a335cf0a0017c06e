"""What one Stripe refund or dispute is, and how much of a top-up's credit it takes back.

A refund or dispute in the top-up's own currency takes its amount (in nano-USD, one currency
unit per USD), never more than the top-up. One in another currency is of a charge Adaptive
Pricing made in the customer's currency: endpoints on API versions before 2025-03-31.basil get
refunds in it, and a dispute is in the currency the card network disputes, the customer's. It
takes its share of the charge, `amount / charge amount` in that currency (the charge's
`amount`, or its `presentment_details` on current versions, which render a charge in the
session's currency), times the top-up's credit: integers only, rounded up to the next nano-USD
(the operator's favour, at most one nano-USD a refund; refunds that add up to the charge take
back the whole credit, never a nano short), never more than the credit. A charge that names no
amount in the refund's currency cannot be read: the whole top-up is taken back (at most that
ever is) and the error log names it for the operator.

Stripe's amounts are 64-bit integers: a signed event with one past that (a refund's, a
dispute's, or that of the charge it is of) is no event Stripe sent, and is refused (400
`invalid_event`) before anything is written.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from codelace_box.billing.checkout import minor_unit_exponent
from codelace_box.billing.stripe import StripeApi
from codelace_box.db.models import Payment
from codelace_box.errors import InvalidRequest

log = logging.getLogger("codelace_box.billing.reversals")

MAX_STRIPE_AMOUNT = 2**63 - 1  # Stripe's integers are 64-bit
# A dispute Stripe's dispute prevention resolved by giving the cardholder their money back
# (Visa's Rapid Dispute Resolution: status `prevented`, card case type `resolution`, the amount
# withdrawn by a balance transaction of the dispute), told from one it blocked (case type
# `block`, no funds moved): the money is gone.
PREVENTED_REFUNDED = "prevented_refunded"


@dataclass(frozen=True)
class Reversal:
    """One refund or dispute as an event (or Stripe's API) describes it."""

    id: str
    kind: str  # refund | dispute
    payment_intent: str
    amount: int  # in the currency's smallest unit
    currency: str
    status: str
    charge: str = ""  # the charge's id (ch_...)
    charge_amount: int | None = None  # the charge's amount in `currency`, when known


def id_of(value: object) -> str:
    """A Stripe reference as its id, expanded or not ("" for none)."""
    if isinstance(value, dict):
        value = value.get("id")
    return str(value) if isinstance(value, str) and value else ""


def parse_reversals(
    items: list[Any],
    kind: str,
    payment_intent: str | None = None,
    charge: dict[str, Any] | None = None,
) -> list[Reversal]:
    """The well-formed refunds or disputes among `items` (Stripe objects as dicts); `charge`,
    the charge they are of when the event carries it. InvalidRequest for an amount past 64
    bits."""
    found = []
    for item in items:
        if not isinstance(item, dict) or item.get("object", kind) != kind:
            continue
        amount, intent = item.get("amount"), id_of(item.get("payment_intent")) or payment_intent
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            continue
        if amount > MAX_STRIPE_AMOUNT:
            raise InvalidRequest(
                f"Stripe {kind} {str(item.get('id'))[:100]!r} has an amount past 64 bits",
                code="invalid_event",
            )
        if not item.get("id") or not intent:
            continue
        currency, status = str(item.get("currency") or "").lower(), status_of(item, kind)
        of = charge if charge is not None else item.get("charge")
        charged = charge_amount_in(of, currency) if isinstance(of, dict) else None
        found.append(
            Reversal(str(item["id"]), kind, intent, amount, currency, status, id_of(of), charged)
        )
    return found


def status_of(item: dict[str, Any], kind: str) -> str:
    """A refund's or dispute's status; PREVENTED_REFUNDED for a dispute Stripe prevented by
    giving the cardholder their money back: a resolution (its card `case_type`), or one whose
    balance transactions withdrew the money."""
    status = str(item.get("status") or "")
    if kind != "dispute" or status != "prevented":
        return status
    details = item.get("payment_method_details")
    card = details.get("card") if isinstance(details, dict) else None
    resolved = isinstance(card, dict) and card.get("case_type") == "resolution"
    moved = item.get("balance_transactions")
    amounts = (
        [t.get("amount") for t in moved if isinstance(t, dict)] if isinstance(moved, list) else []
    )
    withdrawn = sum(a for a in amounts if isinstance(a, int) and not isinstance(a, bool)) < 0
    return PREVENTED_REFUNDED if resolved or withdrawn else status


def charge_amount_in(charge: dict[str, Any], currency: str) -> int | None:
    """The charge's amount in `currency` (its own, or what it presented the customer), if it
    names one that is a positive integer. InvalidRequest for an amount past 64 bits (the
    share's divisor: read, it would take back next to nothing)."""
    presented = charge.get("presentment_details")
    candidates = [(charge.get("currency"), charge.get("amount"))]
    if isinstance(presented, dict):
        candidates.append(
            (presented.get("presentment_currency"), presented.get("presentment_amount"))
        )
    if any(isinstance(amount, int) and amount > MAX_STRIPE_AMOUNT for _, amount in candidates):
        raise InvalidRequest(
            f"Stripe charge {str(charge.get('id'))[:100]!r} has an amount past 64 bits",
            code="invalid_event",
        )
    for named, amount in candidates:
        if str(named or "").lower() != currency or isinstance(amount, bool):
            continue
        if isinstance(amount, int) and amount > 0:
            return amount
    return None


async def with_charge_amounts(api: StripeApi, reversals: list[Reversal]) -> list[Reversal]:
    """`reversals`, those in another currency than the box's (`stripe.currency`) with their
    charge's amount in theirs, read at Stripe (once a charge) unless the event carried it.
    On a box that changed its currency (`stripe.par_currencies` set) every one: a top-up of
    the old currency may have been paid in the new one (Adaptive Pricing), and a refund in
    it is then another currency than its top-up's, whose share needs the charge's amount."""
    own = api.config.currency.lower()
    changed = bool(api.config.par_currencies)
    wanted = {
        r.charge for r in reversals if (r.currency != own or changed) and r.charge_amount is None
    }
    charges = {charge_id: await api.charge(charge_id) for charge_id in sorted(wanted - {""})}
    return [
        replace(r, charge_amount=charge_amount_in(charges[r.charge], r.currency))
        if r.charge in charges
        else r
        for r in reversals
    ]


def reversal_nanos(payment: Payment, reversal: Reversal, *, capped: bool = True) -> int:
    """What the refund or dispute takes back of the top-up, in nano-USD (see the module's
    docstring); never more than the top-up's amount (`capped`; else what it asks)."""
    ceiling = int(payment.amount_nanos)
    cap = ceiling if capped else MAX_STRIPE_AMOUNT * 10**9
    if reversal.currency == payment.currency.lower():
        return min(reversal.amount * 10 ** (9 - minor_unit_exponent(payment.currency)), cap)
    if reversal.charge_amount:
        return min(-(-ceiling * reversal.amount // reversal.charge_amount), cap)
    if not capped:  # asked again of what was read once (and logged then)
        return ceiling
    log.error(
        "Stripe %s %s is in %r, of a charge with no amount in it; the top-up %s is in %r: "
        "taking back the whole top-up",
        *(reversal.kind, reversal.id, reversal.currency, payment.stripe_session_id),
        payment.currency,
    )
    return ceiling


def refuse_session_past_64_bits(session: dict[str, Any]) -> None:
    """InvalidRequest for a session whose total (or its conversion's) is past 64 bits."""
    conversion = session.get("currency_conversion")
    totals = [session.get("amount_total")]
    totals += [conversion.get("amount_total")] if isinstance(conversion, dict) else []
    if any(isinstance(total, int) and total > MAX_STRIPE_AMOUNT for total in totals):
        named = f"Stripe Checkout Session {str(session['id'])[:100]!r} has an amount past 64 bits"
        log.error("%s: no session Stripe made; event refused, nothing credited", named)
        raise InvalidRequest(named, code="invalid_event")
