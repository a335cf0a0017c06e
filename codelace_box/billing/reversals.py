"""Stripe refunds and disputes of top-ups: what Stripe gave back takes the credit back, once.

A refund or dispute names the charge's PaymentIntent, which the top-up's payment row records
when its session is paid (webhooks.py). Each refund (`re_...`) and dispute (`du_...`) is kept
in `stripe_reversal` as last heard of, and a payment's `refunded_nanos` is what they take back
now: the sum of its refunds that did not fail and its chargebacks not won, never more than the
top-up credited (what one takes, in its currency or the customer's: reversal_amounts.py). Every
change of that sum is one ledger entry (kind `refund`, reason naming Stripe's id, idempotency
key `stripe:<refund|dispute>:<id>`, later changes of the same one `...:<status>`), so a
redelivery, or an older event arriving after a newer one, moves nothing:

    refund   pending / requires_action / succeeded: taken;  failed / canceled: given back (final)
    dispute  chargeback (needs_response, under_review): taken;  lost: taken (final, unless
             appealed: appeal_needs_response, appeal_under_review taken, then won or lost);
             won / prevented: given back (final; one that refunded the cardholder: taken)
             inquiry (warning_needs_response, warning_under_review, warning_closed): nothing

An inquiry is the issuer asking before any chargeback: Stripe withdraws no funds for it, so it
takes nothing, and its closing (`warning_closed`) gives nothing back; the log warns the
operator. If the issuer escalates it to a chargeback (`needs_response`, with
`charge.dispute.funds_withdrawn`), that takes the credit. A final status is never left (a late
`refund.created` after `refund.failed` changes nothing), but a closed inquiry may still be
escalated; an inquiry's status heard after a chargeback's is older and changes nothing. The
balance may go below zero (requests then get 402). A trial or an admin credit is no payment.
Events about charges that are not this box's top-ups are acknowledged and move nothing; they,
and a refund or dispute that takes back less than it asks (the credit was already taken back),
are written to the audit log for the operator (billing/refused.py).
`charge.refunded` carries no refunds on current API versions: the charge's refunds are then
listed at Stripe (`StripeApi.charge_refunds`). What an event says is reversal_events.py's; which
status takes and which is stale, reversal_states.py's.
"""

from __future__ import annotations

import logging
from typing import Any

from codelace_box.billing.claims import TopupClaim, restore_topup, topup_claim
from codelace_box.billing.ledger import append_entry
from codelace_box.billing.refused import (
    UNCREDITED,
    Uncovered,
    record_invalid,
    record_not_ours,
    record_short,
    record_uncovered,
    record_uncredited,
)
from codelace_box.billing.reversal_amounts import (
    Reversal,
    id_of,
    parse_reversals,
    reversal_nanos,
    with_charge_amounts,
)
from codelace_box.billing.reversal_events import (
    charge_to_list,
    object_of,
    reversals_in,
)
from codelace_box.billing.reversal_states import is_inquiry, is_stale, takes
from codelace_box.billing.stripe import StripeApi
from codelace_box.db.core import connection, durable, exclusive, utcnow
from codelace_box.db.models import LedgerEntry, Payment, StripeEvent, StripeReversal
from codelace_box.db.offload import run_db_work
from codelace_box.errors import InvalidRequest

log = logging.getLogger("codelace_box.billing.reversals")


def topup_of(payment_intent: str) -> Payment | None:
    """The top-up paid by this PaymentIntent, if it is one of this box's."""
    return Payment.get_or_none(Payment.payment_intent == payment_intent, Payment.kind == "topup")


def any_known(payment_intents: set[str]) -> bool:
    """Whether any of these PaymentIntents paid one of this box's top-ups (a read only)."""
    return any(topup_of(intent) is not None for intent in payment_intents if intent)


async def reversal_event(
    api: StripeApi, event_id: str, event_type: str, event: dict[str, Any]
) -> str:
    """`handle_reversal`; one refused as no event Stripe sent (an amount past 64 bits: whoever
    signed it holds the webhook secret) is logged and audited (billing/refused.py), then
    answered 400 as before."""
    try:
        return await handle_reversal(api, event_id, event_type, event)
    except InvalidRequest as exc:
        if exc.code != "invalid_event":
            raise
        log.error("Stripe event %s (%s) refused: %s", event_id, event_type, exc.message)
        target = id_of(object_of(event).get("id")) or event_id
        await run_db_work(record_invalid, (event_id, event_type), target, exc.message)
        raise


async def handle_reversal(
    api: StripeApi, event_id: str, event_type: str, event: dict[str, Any]
) -> str:
    """Apply a refund or dispute event; "unknown_charge", with nothing written, for a charge
    that paid none of this box's top-ups (another integration on the same Stripe account).

    A PaymentIntent no payment row records yet (the refund's event came before its session's
    checkout.session.completed) is looked up at Stripe: the sessions it paid, one of which
    may be a top-up of this box still pending here, or one whose row a restored database
    lost, recreated (pending) from its signed claim so its credit is taken back once made."""
    obj = object_of(event)
    found = reversals_in(event_type, obj)
    listing = charge_to_list(event_type, obj)
    intents = {r.payment_intent for r in found} | ({listing[1]} if listing else set())
    sessions: dict[str, list[str]] = {}
    claims: dict[str, tuple[str, TopupClaim]] = {}
    if not await run_db_work(any_known, intents):
        for intent in sorted(intents):
            paid = await api.sessions_of_intent(intent)
            sessions[intent] = [str(s.get("id")) for s in paid]
            for claimed in _claims(paid, api.box_secret):
                claims[intent] = claimed
        if not claims and not await run_db_work(any_adoptable, sessions):
            log.info("Stripe event %s (%s) is about no top-up of this box", event_id, event_type)
            charge = listing[0] if listing else id_of(obj.get("charge") or obj.get("id"))
            await run_db_work(record_not_ours, (event_id, event_type), found, charge)
            return "unknown_charge"
    if listing is not None:
        refunds = await api.charge_refunds(listing[0])
        found = parse_reversals(refunds, "refund", listing[1], obj)
    found = await with_charge_amounts(api, found)  # in the customer's currency: its share
    return await run_db_work(apply_reversals, event_id, event_type, found, sessions, claims)


def _claims(sessions: list[dict[str, Any]], box_secret: str) -> list[tuple[str, TopupClaim]]:
    """(session id, claim) of the sessions whose signed metadata proves them this box's
    top-ups (billing/claims.py): a row a restored database lost is recreated from it."""
    found = [(str(s.get("id")), topup_claim(s, box_secret)) for s in sessions if s.get("id")]
    return [(session_id, claim) for session_id, claim in found if claim is not None]


def any_adoptable(sessions: dict[str, list[str]]) -> bool:
    """Whether a PaymentIntent paid a top-up session of this box that does not know it yet."""
    return any(_adoptable(ids) is not None for ids in sessions.values())


def _adoptable(session_ids: list[str]) -> Payment | None:
    if not session_ids:
        return None
    return Payment.get_or_none(
        Payment.stripe_session_id.in_(session_ids),
        Payment.kind == "topup",
        Payment.payment_intent.is_null(),
    )


def _payment_paid_by(
    intent: str, sessions: dict[str, list[str]], claims: dict[str, tuple[str, TopupClaim]]
) -> Payment | None:
    """The top-up this PaymentIntent paid, its session's lock held: recorded, or (`sessions`,
    Stripe's word) adopted, or recreated from its session's signed claim (a row a restored
    database lost), the PaymentIntent then recorded on it."""
    payment = topup_of(intent) or _adoptable(sessions.get(intent, []))
    if payment is None and intent in claims:
        session_id, claim = claims[intent]
        exclusive(connection(), f"stripe:session:{session_id}")
        payment = Payment.get_or_none(
            Payment.stripe_session_id == session_id, Payment.kind == "topup"
        ) or restore_topup(session_id, claim)
    if payment is None:
        return None
    exclusive(connection(), f"stripe:session:{payment.stripe_session_id}")
    Payment.update(payment_intent=intent).where(
        Payment.id == payment.id, Payment.payment_intent.is_null()
    ).execute()
    return payment


def apply_reversals(
    event_id: str,
    event_type: str,
    reversals: list[Reversal],
    sessions: dict[str, list[str]] | None = None,
    claims: dict[str, tuple[str, TopupClaim]] | None = None,
) -> str:
    """Record an event's refunds or disputes and move the balances they change, in one
    transaction committed with an fsync. An event about nobody's top-up here moves nothing
    and is not remembered (only its audit entry is written)."""
    with durable():
        exclusive(connection(), f"stripe:event:{event_id}")
        if StripeEvent.get_or_none(StripeEvent.id == event_id) is not None:
            return "duplicate"
        results, not_ours = [], []
        for intent in sorted({r.payment_intent for r in reversals}):
            payment = _payment_paid_by(intent, sessions or {}, claims or {})
            mine = [r for r in reversals if r.payment_intent == intent]
            if payment is None:
                not_ours += mine
                continue
            results += [_apply_one(payment.id, r, (event_id, event_type)) for r in mine]
        if not_ours:
            record_not_ours((event_id, event_type), not_ours, "")
        if not results:
            return "unknown_charge"
        StripeEvent.create(id=event_id, type=event_type[:200])
        return "reversed" if "reversed" in results else "unchanged"


def _apply_one(payment_id: int, reversal: Reversal, event: tuple[str, str]) -> str:
    """Record one refund or dispute; post what it changes (a fresh read of the payment); an
    audit entry when it takes back less than it asks (billing/refused.py)."""
    payment = Payment.get_by_id(payment_id)
    row = StripeReversal.get_or_none(StripeReversal.id == reversal.id)
    took = row is not None and takes(row.kind, row.status)
    if not _record(payment, reversal):
        return "unchanged"
    result = _post(payment, reversal)
    if takes(reversal.kind, reversal.status) and not took:
        record_short(event, payment, reversal, payment.refunded_nanos)
    return result


def _post(payment: Payment, reversal: Reversal) -> str:
    """Post what a refund or dispute just recorded changes of its top-up's credit."""
    if reversal.kind == "dispute" and is_inquiry(reversal.status):
        log.warning(
            "Stripe inquiry %s (%s) of top-up %s, account %s: no funds withdrawn, nothing "
            "taken back; a chargeback would take the credit",
            *(reversal.id, reversal.status, payment.stripe_session_id, payment.user.id),
        )
    base = f"stripe:{reversal.kind}:{reversal.id}"
    key = f"{base}:{reversal.status}" if _posted(base) else base
    word = "refund" if reversal.kind == "refund" else "dispute"
    reason = (
        f"Stripe {word} {reversal.id} of top-up {payment.stripe_session_id} "
        f"({reversal.status or 'no status'})"
    )
    return "reversed" if settle(payment, reason, key) else "unchanged"


def _posted(key: str) -> bool:
    return LedgerEntry.get_or_none(LedgerEntry.idempotency_key == key) is not None


def _record(payment: Payment, reversal: Reversal) -> bool:
    """Keep the refund or dispute's newest state; False when this changes nothing (the same
    status again, or a status after a final one: an older event delivered late)."""
    row = StripeReversal.get_or_none(StripeReversal.id == reversal.id)
    if row is not None and is_stale(row.kind, row.status, reversal.status):
        return False
    nanos = reversal_nanos(payment, reversal)
    if row is None:
        StripeReversal.create(
            id=reversal.id,
            payment=payment.id,
            kind=reversal.kind,
            amount_nanos=nanos,
            status=reversal.status,
        )
        return True
    StripeReversal.update(status=reversal.status, amount_nanos=nanos, updated_at=utcnow()).where(
        StripeReversal.id == reversal.id
    ).execute()
    return True


def catch_up(payment: Payment) -> bool:
    """Right after a top-up's credit: take back what its refunds and disputes heard of
    before (their events came before the session's) take; True if an entry was written."""
    rows = StripeReversal.select().where(StripeReversal.payment == payment.id)
    named = ", ".join(f"{r.kind} {r.id} ({r.status})" for r in rows.order_by(StripeReversal.id))
    if not named:
        return False
    reason = f"Stripe {named} of top-up {payment.stripe_session_id}, heard of before its credit"
    return settle(payment, reason, f"stripe:session:{payment.stripe_session_id}:reversed")


def audit_topup(event: tuple[str, str], session: dict[str, Any], result: str) -> None:
    """Inside a top-up session event's transaction: what its credit did not do, for the
    operator (billing/refused.py): a paid session that credited nothing, or refunds and
    disputes heard of before the credit that it could not cover in full."""
    if result in UNCREDITED:  # paid, credited nothing: the operator's to settle
        record_uncredited(event, session, result)
    if result != "credited":
        return
    payment = Payment.get_or_none(Payment.stripe_session_id == str(session["id"]))
    if payment is not None and (missed := uncovered(payment)):
        record_uncovered(event, payment, missed)


def uncovered(payment: Payment) -> list[Uncovered]:
    """The refunds and disputes of a top-up whose amounts its credit does not cover, each
    taken in the order last heard of after those before it."""
    rows = StripeReversal.select().where(StripeReversal.payment == payment.id)
    missed: list[Uncovered] = []
    before = 0
    for row in rows.order_by(StripeReversal.updated_at, StripeReversal.id):
        if not takes(row.kind, row.status):
            continue
        taken = max(0, min(row.amount_nanos, payment.amount_nanos - before))
        if taken < row.amount_nanos:
            missed.append((row.kind, row.id, row.status, row.amount_nanos, taken, before))
        before += taken
    return missed


def settle(payment: Payment, reason: str, key: str) -> bool:
    """Move the balance so the payment's `refunded_nanos` is what its refunds and disputes
    take back now (at most what it credited); True if an entry was written."""
    rows = StripeReversal.select().where(StripeReversal.payment == payment.id)
    holding = sum(r.amount_nanos for r in rows if takes(r.kind, r.status))
    credited = payment.amount_nanos if payment.status == "completed" else 0
    target = min(credited, holding)
    delta = target - payment.refunded_nanos
    if delta == 0:
        return False
    posting = append_entry(payment.user.id, -delta, "refund", reason, key)
    if not posting.created:  # the key says this change was posted already
        return False
    Payment.update(refunded_nanos=target).where(Payment.id == payment.id).execute()
    log.info("payment %s: %s nano-USD taken back (%s)", payment.id, target, reason)
    return True
