"""The Stripe double's charges, refunds and disputes (a mixin of StripeDouble).

A paid Checkout Session's PaymentIntent has one charge (`ch_...`), made the first time the
test refunds or disputes it. `refund()` is the operator refunding in the Dashboard: it returns
the events Stripe sends, `charge.refunded` (the charge, without its refunds, as API versions
since 2022-11-15 render it) and `refund.created` (the refund); `update_refund()` moves a refund
on (`refund.updated`, or `refund.failed` for a failure). `dispute()` is the cardholder's bank
opening a dispute (`charge.dispute.created`), `close_dispute()` its end
(`charge.dispute.closed`, won or lost), `prevent_dispute()` Stripe's dispute prevention
ending it first, `appeal_dispute()` the business appealing a lost one
(`charge.dispute.updated`, then `close_dispute()` again). `GET /v1/refunds?charge=` lists a
charge's refunds, newest first, in pages (`limit`, `starting_after`), as Stripe does, and
`GET /v1/checkout/sessions?payment_intent=` the session a PaymentIntent paid, and
`GET /v1/charges/{id}`, `/v1/refunds/{id}` and `/v1/disputes/{id}` one object.

`localize()` is Adaptive Pricing: the customer paid the session in their own currency. The
charge is then rendered as current API versions render it, in the session's currency with the
customer's amount under `presentment_details`, and a dispute of it is in the customer's
currency (the card network's; a dispute has no presentment details).
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

from tests.fakes.stripe_wire import StripeApiError, new_id


class ChargesMixin:
    """Charges of paid sessions, with their refunds and disputes."""

    lock: threading.Lock
    sessions: dict[str, dict[str, Any]]
    charges: dict[str, dict[str, Any]]
    refunds: dict[str, dict[str, Any]]
    disputes: dict[str, dict[str, Any]]

    def _event(self, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _charge_of(self, session_id: str) -> dict[str, Any]:
        """The charge that paid a session (made on first use)."""
        session = self.sessions[session_id]
        intent = session.get("payment_intent")
        if session["mode"] != "payment" or session.get("payment_status") != "paid" or not intent:
            raise AssertionError(f"session {session_id} was not paid: nothing to refund")
        for charge in self.charges.values():
            if charge["payment_intent"] == intent:
                return charge
        charge = {
            "id": new_id("ch"),
            "object": "charge",
            "amount": session["amount_total"],
            "amount_captured": session["amount_total"],
            "amount_refunded": 0,
            "captured": True,
            "currency": session["currency"],
            "disputed": False,
            "paid": True,
            "payment_intent": intent,
            "refunded": False,
            "status": "succeeded",
            "metadata": {},
            "created": int(time.time()),
            "livemode": False,
        }
        self.charges[charge["id"]] = charge
        return charge

    def localize(self, session_id: str, currency: str, amount: int) -> dict[str, Any]:
        """The paid session's charge was made in `amount` of `currency` (Adaptive Pricing)."""
        with self.lock:
            charge = self._charge_of(session_id)
            charge["presentment_details"] = {
                "presentment_amount": amount,
                "presentment_currency": currency,
            }
            return copy.deepcopy(charge)

    def refund(
        self, session_id: str, amount: int | None = None, status: str = "succeeded"
    ) -> list[dict[str, Any]]:
        """Refund a paid session (all that is left, or `amount` in the smallest unit); the
        events Stripe sends: charge.refunded, then refund.created."""
        with self.lock:
            charge = self._charge_of(session_id)
            left = charge["amount"] - charge["amount_refunded"]
            amount = left if amount is None else amount
            if not 0 < amount <= left:
                raise AssertionError(f"Refund amount {amount} is greater than unrefunded {left}")
            refund = {
                "id": new_id("re"),
                "object": "refund",
                "amount": amount,
                "charge": charge["id"],
                "currency": charge["currency"],
                "payment_intent": charge["payment_intent"],
                "reason": "requested_by_customer",
                "status": status,
                "metadata": {},
                "created": int(time.time()),
            }
            self.refunds[refund["id"]] = refund
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            return [self._event("charge.refunded", charge), self._event("refund.created", refund)]

    def update_refund(self, refund_id: str, status: str) -> dict[str, Any]:
        """A refund moves on: refund.failed for a failure, refund.updated otherwise."""
        with self.lock:
            refund = self.refunds[refund_id]
            refund["status"] = status
            if status in ("failed", "canceled"):
                self.charges[refund["charge"]]["amount_refunded"] -= refund["amount"]
            kind = "refund.failed" if status == "failed" else "refund.updated"
            return self._event(kind, refund)

    def dispute(self, session_id: str, amount: int | None = None) -> dict[str, Any]:
        """The cardholder disputes a paid session; returns charge.dispute.created."""
        with self.lock:
            charge = self._charge_of(session_id)
            charge["disputed"] = True
            presented = charge.get("presentment_details") or {}
            charged = presented.get("presentment_amount", charge["amount"])
            dispute = {
                "id": new_id("du"),
                "object": "dispute",
                "amount": charged if amount is None else amount,
                "charge": charge["id"],
                "currency": presented.get("presentment_currency", charge["currency"]),
                "payment_intent": charge["payment_intent"],
                "reason": "fraudulent",
                "status": "needs_response",
                "is_charge_refundable": False,
                "evidence": {},
                "metadata": {},
                "created": int(time.time()),
                "livemode": False,
            }
            self.disputes[dispute["id"]] = dispute
            return self._event("charge.dispute.created", dispute)

    def close_dispute(self, dispute_id: str, won: bool) -> dict[str, Any]:
        """The dispute ends; returns charge.dispute.closed."""
        with self.lock:
            dispute = self.disputes[dispute_id]
            dispute["status"] = "won" if won else "lost"
            return self._event("charge.dispute.closed", dispute)

    def prevent_dispute(
        self, dispute_id: str, refunded: bool, withdrawn: bool = True
    ) -> dict[str, Any]:
        """Stripe's dispute prevention ends the dispute before it is a chargeback (status
        `prevented`, API version 2025-08-27.basil on): blocked (`case_type` block, no funds
        move), or resolved by giving the cardholder their money back (Visa's Rapid Dispute
        Resolution, `case_type` resolution: a balance transaction withdraws the amount, without
        a dispute fee, unless not `withdrawn`); returns charge.dispute.closed."""
        with self.lock:
            dispute = self.disputes[dispute_id]
            dispute["status"] = "prevented"
            case = "resolution" if refunded else "block"
            dispute["payment_method_details"] = {"type": "card", "card": {"case_type": case}}
            moved = {"id": new_id("txn"), "object": "balance_transaction",
                         "amount": -dispute["amount"], "currency": dispute["currency"],
                         "fee": 0, "reporting_category": "dispute"}  # fmt: skip
            dispute["balance_transactions"] = [moved] if refunded and withdrawn else []
            return self._event("charge.dispute.closed", dispute)

    def appeal_dispute(self, dispute_id: str, status: str) -> dict[str, Any]:
        """The business appeals a lost dispute (Stripe's appeal stage, API version
        2026-10-28.endive): `status` appeal_needs_response or appeal_under_review; returns
        charge.dispute.updated (`close_dispute` then ends the appeal won or lost)."""
        with self.lock:
            dispute = self.disputes[dispute_id]
            dispute["status"] = status
            return self._event("charge.dispute.updated", dispute)

    def list_objects(self, parts: list[str], params: dict[str, Any]) -> dict[str, Any] | None:
        """A GET this mixin answers (sessions by PaymentIntent, refunds; a charge, refund or
        dispute by id); else None."""
        if parts == ["v1", "checkout", "sessions"]:
            return self._list_sessions(params)
        if parts == ["v1", "refunds"]:
            return self._list_refunds(params)
        tables = {"charges": (self.charges, "charge"), "refunds": (self.refunds, "refund")}
        tables["disputes"] = (self.disputes, "dispute")
        if len(parts) == 3 and parts[0] == "v1" and parts[1] in tables:
            table, kind = tables[parts[1]]
            if parts[2] not in table:
                raise StripeApiError(
                    404, f"No such {kind}: '{parts[2]}'", param="id", code="resource_missing"
                )
            return copy.deepcopy(table[parts[2]])
        return None

    def _list_sessions(self, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/checkout/sessions: newest first, filtered by `payment_intent` (one page)."""
        wanted = params.get("payment_intent")
        listed = [s for s in self.sessions.values() if wanted in (None, s["payment_intent"])]
        limit = int(params.get("limit") or 10)
        return {
            "object": "list",
            "data": copy.deepcopy(listed[::-1][:limit]),
            "has_more": len(listed) > limit,
            "url": "/v1/checkout/sessions",
        }

    def _list_refunds(self, params: dict[str, Any]) -> dict[str, Any]:
        """GET /v1/refunds: newest first, filtered by `charge`, paged like Stripe's lists."""
        wanted = params.get("charge")
        if wanted is not None and wanted not in self.charges:
            raise StripeApiError(
                404, f"No such charge: '{wanted}'", param="charge", code="resource_missing"
            )
        listed = [r for r in self.refunds.values() if wanted in (None, r["charge"])][::-1]
        after = params.get("starting_after")
        if after:
            listed = listed[[r["id"] for r in listed].index(after) + 1 :]
        limit = int(params.get("limit") or 10)
        return {
            "object": "list",
            "data": copy.deepcopy(listed[:limit]),
            "has_more": len(listed) > limit,
            "url": "/v1/refunds",
        }
