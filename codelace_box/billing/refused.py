"""Stripe refunds and disputes the box did not apply in full, and paid top-ups it credited
nothing for, written to the audit log.

Stripe gave money back (or a chargeback took it) but the box took back less of the credit: the
top-up's credit was already taken back by its other refunds and disputes (a refund after a
lost chargeback: the customer got the money twice), or the charge paid no top-up of this box
(another integration on the same Stripe account, or a payment a restored database lost). The
operator sees such events where money changes are seen: one audit entry each (client
`stripe`, command `stripe refund refused` or `stripe dispute refused`, target the refund's or
dispute's id), with what Stripe moved, what the box took back and why; Stripe's ids and
amounts only, never a key. So is a signed event refused as none Stripe sent (an amount past
its 64-bit integers: 400 `invalid_event`). A redelivered event writes no second entry.
A top-up session of this box whose paid event credits nothing (its amount does not read in the
top-up's currency; its account is not here) is one too: command `stripe top-up refused`,
target the session, with Stripe's amount, the account and why, for the operator to settle.
"""

from __future__ import annotations

from typing import Any

from codelace_box.audit import canonical, record
from codelace_box.billing.reversal_amounts import Reversal, reversal_nanos
from codelace_box.db.core import exclusive, write_transaction
from codelace_box.db.models import Payment
from codelace_box.db.observability import audit_entry_holds
from codelace_box.money import usd_text

CLIENT = "stripe"
# (kind, Stripe's id, status, nano-USD asked, nano-USD taken, nano-USD the ones before it
# took) of a refund or dispute heard of before its top-up's credit, which did not cover it
Uncovered = tuple[str, str, str, int, int, int]
NOT_OURS = "no top-up of this box is paid by this charge: nothing taken back"


TOPUP_REFUSED = "stripe top-up refused"
SETTLE = "nothing credited; settle it by hand (credit the account, or refund it at Stripe)"
UNCREDITED = {  # a paid top-up's webhook result -> why it credited nothing
    "amount_mismatch": f"the paid amount does not read in the top-up's currency: {SETTLE}",
    "account_not_found": (
        "the session's account is not on this box (a database restored from a backup older "
        f"than the account?): {SETTLE}"
    ),
}


def record_uncredited(event: tuple[str, str], session: dict[str, Any], result: str) -> None:
    """Inside the event's transaction: an entry for a paid top-up session of this box that
    credited nothing (`result`, a key of UNCREDITED); a redelivery never gets here."""
    session_id = str(session["id"])[:200]
    total, currency = session.get("amount_total"), session.get("currency")
    after: dict[str, object] = {
        "event": event[0],
        "event_type": event[1],
        "amount": f"{total} {currency}"[:100],  # Stripe's, in the smallest unit
        "refused": UNCREDITED[result],
    }
    payment = Payment.get_or_none(Payment.stripe_session_id == session_id, Payment.kind == "topup")
    if payment is not None:
        after["account"] = payment.user.uuid
    else:  # the account the session's signed metadata names, gone from here
        metadata = session.get("metadata")
        number = metadata.get("codelace_user_id") if isinstance(metadata, dict) else None
        after["account_number"] = str(number)[:40]
        after["customer_email"] = str(session.get("customer_email"))[:320]
    with write_transaction() as tx:
        record(tx, CLIENT, TOPUP_REFUSED, session_id, None, after)


def command_of(kind: str) -> str:
    return f"stripe {kind} refused"


def record_short(
    event: tuple[str, str], payment: Payment, reversal: Reversal, refunded_before: int
) -> None:
    """Inside the event's transaction, after the reversal was applied: an entry if the box took
    back less than it asks of the top-up `payment` (whose refunded amount was
    `refunded_before`). A top-up not credited yet is taken back once credited (catch_up), and
    what its credit could not cover is written then (`record_uncovered`)."""
    now = Payment.get_by_id(payment.id)
    if now.status != "completed":
        return
    asked = reversal_nanos(now, reversal, capped=False)
    taken = now.refunded_nanos - refunded_before
    if taken >= asked:
        return
    after = _after(event, reversal, asked, taken, _why_short(now, refunded_before))
    with write_transaction() as tx:
        record(tx, CLIENT, command_of(reversal.kind), reversal.id, None, after | _of(now))


def record_uncovered(event: tuple[str, str], payment: Payment, uncovered: list[Uncovered]) -> None:
    """Inside the credit's transaction: an entry for each refund or dispute heard of before
    the top-up's credit that the credit could not cover in full (`catch_up` took the rest of
    it), as `record_short` writes one heard of after the credit."""
    entries = []
    for kind, reversal_id, status, asked, taken, before in uncovered:
        after: dict[str, object] = {"event": event[0], "event_type": event[1], "status": status}
        after |= {"taken_back_usd": usd_text(taken), "asked_usd": usd_text(asked)}
        after["refused"] = _why_short(payment, before)
        entries.append((command_of(kind), reversal_id, after | _of(payment)))
    with write_transaction() as tx:
        for command, target, after in entries:
            record(tx, CLIENT, command, target, None, after)


def _why_short(payment: Payment, refunded_before: int) -> str:
    left = payment.amount_nanos - refunded_before
    return (
        f"only {usd_text(max(left, 0))} of the top-up's {usd_text(payment.amount_nanos)} credit "
        "was left to take back (its other refunds and disputes took the rest)"
    )


def _of(payment: Payment) -> dict[str, object]:
    return {
        "payment": payment.stripe_session_id,
        "account": payment.user.uuid,
        "refunded_usd": usd_text(payment.refunded_nanos),
    }


def record_not_ours(event: tuple[str, str], reversals: list[Reversal], charge: str) -> None:
    """An entry for each refund or dispute of an event about no top-up of this box (one for
    the charge when the event names none), unless this event already wrote it."""
    named: list[tuple[str, str, dict[str, object]]] = [
        (command_of(r.kind), r.id, _after(event, r, None, 0, NOT_OURS)) for r in reversals
    ]
    if not reversals:  # a charge.refunded whose refunds were not listed
        after: dict[str, object] = {"event": event[0], "event_type": event[1], "refused": NOT_OURS}
        named.append((command_of("refund"), charge or event[0], after))
    with write_transaction() as tx:
        exclusive(tx, f"stripe:event:{event[0]}")  # one delivery at a time checks, then writes
        for command, target, state in named:
            if not _written(command, target, event[0]):
                record(tx, CLIENT, command, target, None, state)


def record_invalid(event: tuple[str, str], target: str, why: str) -> None:
    """An entry for a signed refund or dispute event refused as none Stripe sent (400
    `invalid_event`); Stripe retries a 400, a forger may too: once per event."""
    kind = "dispute" if ".dispute." in event[1] else "refund"
    after: dict[str, object] = {
        "event": event[0],
        "event_type": event[1],
        "refused": f"{why}: no event Stripe sent (is stripe.webhook_secret known elsewhere?)",
    }
    with write_transaction() as tx:
        exclusive(tx, f"stripe:event:{event[0]}")  # deliveries at once: one writes it
        if not _written(command_of(kind), target, event[0]):
            record(tx, CLIENT, command_of(kind), target, None, after)


def _after(
    event: tuple[str, str], reversal: Reversal, asked: int | None, taken: int, why: str
) -> dict[str, object]:
    after: dict[str, object] = {
        "event": event[0],
        "event_type": event[1],
        "status": reversal.status,
        "amount": f"{reversal.amount} {reversal.currency}",  # Stripe's, in the smallest unit
        "taken_back_usd": usd_text(taken),
        "refused": why,
    }
    if asked is not None:
        after["asked_usd"] = usd_text(asked)
    if reversal.charge:
        after["charge"] = reversal.charge
    return after


def _written(command: str, target: str, event_id: str) -> bool:
    """Whether this event already wrote its entry for `target` (a redelivery)."""
    return audit_entry_holds(command, target, canonical({"event": event_id})[1:-1])
