"""The Stripe double's sessions moved on by the customer and by Stripe (a mixin of
StripeDouble): `complete()` (the checkout finished, a setup's card attached),
`succeed_async()` / `fail_async()` (a delayed payment method settling) and `expire()` (the
session timing out unpaid), each returning the event Stripe would send."""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from tests.fakes.stripe_wire import new_id


class CustomerMovesMixin:
    """What a customer and Stripe do to a session after the box created it."""

    lock: threading.Lock
    sessions: dict[str, dict[str, Any]]
    setup_intents: dict[str, dict[str, Any]]
    payment_methods: dict[str, dict[str, Any]]

    @staticmethod
    def _find(table: dict[str, dict[str, Any]], object_id: str, kind: str) -> dict[str, Any]:
        raise NotImplementedError

    @staticmethod
    def _event(event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def complete(
        self,
        session_id: str,
        payment_status: str = "paid",
        card_fingerprint: str | None = None,
        payment_method_type: str = "card",
    ) -> dict[str, Any]:
        """The customer finishes the checkout; returns checkout.session.completed."""
        with self.lock:
            session = self._find(self.sessions, session_id, "checkout.session")
            session.update(status="complete", url=None)
            if session["mode"] == "payment":
                session["payment_status"] = payment_status
                session["payment_intent"] = new_id("pi")
            else:
                self._attach_method(session, card_fingerprint, payment_method_type)
            return self._event("checkout.session.completed", session)

    def _attach_method(
        self, session: dict[str, Any], fingerprint: str | None, method_type: str
    ) -> None:
        method_id = new_id("pm")
        method: dict[str, Any] = {
            "id": method_id,
            "object": "payment_method",
            "type": method_type,
            "created": int(time.time()),
            "livemode": False,
        }
        if method_type == "card":
            method["card"] = {
                "brand": "visa",
                "last4": "4242",
                "exp_month": 12,
                "exp_year": 2034,
                "fingerprint": fingerprint or secrets.token_hex(8),
            }
        else:
            method[method_type] = {"last4": "3000"}
        self.payment_methods[method_id] = method
        intent = self.setup_intents[session["setup_intent"]]
        intent.update(status="succeeded", payment_method=method_id)

    def succeed_async(self, session_id: str) -> dict[str, Any]:
        """A delayed payment method settles; returns async_payment_succeeded."""
        with self.lock:
            session = self._find(self.sessions, session_id, "checkout.session")
            session["payment_status"] = "paid"
            return self._event("checkout.session.async_payment_succeeded", session)

    def fail_async(self, session_id: str) -> dict[str, Any]:
        """A delayed payment method fails; returns async_payment_failed."""
        with self.lock:
            session = self._find(self.sessions, session_id, "checkout.session")
            session["payment_status"] = "unpaid"
            return self._event("checkout.session.async_payment_failed", session)

    def expire(self, session_id: str) -> dict[str, Any]:
        """The session times out unpaid; returns checkout.session.expired."""
        with self.lock:
            session = self._find(self.sessions, session_id, "checkout.session")
            session.update(status="expired", url=None)
            return self._event("checkout.session.expired", session)
