"""A paid top-up whose pending row the box lost (its database restored from a backup older
than the session) is credited once, to its account, by the session's signed metadata; a
session whose metadata proves nothing still credits nobody."""

from __future__ import annotations

import gc
import hashlib
import hmac
import json

import pytest

from tests.billing.conftest import BillingBox, BoxFactory
from tests.pg_cluster import wanted_engine, write_config_db
from tests.support import run_cli

pytestmark = pytest.mark.timeout(120)
NANOS = 1_000_000_000


def lose_row(box: BillingBox, session_id: str) -> None:
    """What restoring a backup taken before the session leaves: no row for it."""
    write_config_db(box.config, "DELETE FROM payment WHERE stripe_session_id = ?", (session_id,))


def test_a_paid_session_whose_row_was_lost_is_credited_once_to_its_account(
    box: BillingBox,
) -> None:
    buyer, bystander = box.customer(), box.customer()
    session_id = box.start_topup(buyer, 35)
    lose_row(box, session_id)
    event = box.double.complete(session_id)
    answers = [box.deliver(event).json()["result"] for _ in range(2)]
    assert answers == ["credited", "duplicate"]
    again = box.double.event("checkout.session.completed", box.double.session(session_id))
    assert box.deliver(again).json()["result"] == "already_credited"
    assert box.balance_nanos(buyer) == 35 * NANOS
    assert box.balance_nanos(bystander) == 0
    rows = box.query(
        "SELECT user_id, amount_nanos, kind, status FROM payment WHERE stripe_session_id = ?",
        session_id,
    )
    assert rows == [(buyer.user_id, 35 * NANOS, "topup", "completed")]
    assert [(p["amount_usd"], p["status"]) for p in box.history(buyer)] == [(35, "completed")]


def test_a_lost_row_of_an_async_payment_is_credited_when_it_settles(box: BillingBox) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 12)
    lose_row(box, session_id)
    box.double.complete(session_id, payment_status="unpaid")
    assert box.deliver(box.double.succeed_async(session_id)).json()["result"] == "credited"
    assert box.balance_nanos(buyer) == 12 * NANOS


def test_a_lost_row_with_edited_metadata_credits_nobody(box: BillingBox) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 10)
    lose_row(box, session_id)
    with box.double.lock:  # someone with the Stripe account's keys raises the amount
        box.double.sessions[session_id]["metadata"]["codelace_amount"] = "1000000"
    result = box.deliver(box.double.complete(session_id)).json()["result"]
    assert result == "unknown_session"
    assert box.balance_nanos(buyer) == 0
    assert box.query("SELECT id FROM payment WHERE stripe_session_id = ?", session_id) == []


def test_a_session_tagged_with_another_secret_credits_nobody(box: BillingBox) -> None:
    buyer = box.customer()
    forged_tag = hmac.new(
        b"not-this-box",
        f"codelace-box stripe top-up of 5000 usd for user {buyer.user_id}".encode(),
        hashlib.sha256,
    ).hexdigest()[:32]
    foreign = box.double.handle(
        "POST",
        "/v1/checkout/sessions",
        {
            "mode": "payment",
            "client_reference_id": str(buyer.user_id),
            "line_items": [
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": "5000",
                        "product_data": {"name": "x"},
                    },
                    "quantity": "1",
                }
            ],
            "metadata": {
                "codelace_user_id": str(buyer.user_id),
                "codelace_kind": "topup",
                "codelace_amount": "5000",
                "codelace_currency": "usd",
                "codelace_box": forged_tag,
            },
        },
    )
    result = box.deliver(box.double.complete(foreign["id"])).json()["result"]
    assert result == "unknown_session"
    assert box.balance_nanos(buyer) == 0
    _, refund_created = box.double.refund(foreign["id"])  # its refund recreates no row either
    assert box.deliver(refund_created).json()["result"] == "unknown_charge"
    assert box.query("SELECT id FROM payment WHERE stripe_session_id = ?", foreign["id"]) == []


def test_metadata_of_digits_that_are_no_number_credits_nobody_and_is_acknowledged(
    box: BillingBox,
) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 10)
    lose_row(box, session_id)
    setup_id = box.start_setup(buyer)
    with box.double.lock:  # str.isdigit() holds for "²", int() refuses it
        box.double.sessions[session_id]["metadata"]["codelace_amount"] = "²"
        box.double.sessions[setup_id]["metadata"]["codelace_user_id"] = "²"
        box.double.sessions[setup_id]["client_reference_id"] = "²"
    answers = [box.deliver(box.double.complete(s)) for s in (session_id, setup_id)]
    assert [(a.status_code, a.json().get("result")) for a in answers] == [
        (200, "unknown_session"),
        (200, "unknown_session"),
    ], [a.text for a in answers]
    assert box.balance_nanos(buyer) == 0


def test_a_refund_of_a_lost_row_heard_before_its_credit_is_taken_once_credited(
    box: BillingBox,
) -> None:
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    lose_row(box, session_id)
    completed = box.double.complete(session_id)  # its delivery comes after the refund's
    _, refund_created = box.double.refund(session_id, amount=500)
    assert box.deliver(refund_created).json()["result"] == "unchanged"  # kept, nothing credited
    assert box.deliver(completed).json()["result"] == "credited"
    assert box.balance_nanos(buyer) == 15 * NANOS
    assert [(p["amount_usd"], p["refunded_usd"]) for p in box.history(buyer)] == [(20, 5)]


@pytest.mark.skipif(wanted_engine() == "postgres", reason="restore is SQLite's (pg_restore)")
def test_an_account_id_taken_again_after_a_restore_earns_none_of_its_old_owners_payments(
    billing_box_factory: BoxFactory,
) -> None:
    """A database restored from a backup older than an account forgets the account, and the
    next one signed up takes its number; the sessions the forgotten account started (a bank
    debit that settles days later, a card setup whose event Stripe retries) name that number in
    their signed metadata. They credited the newcomer (the top-up, the trial): the claim now
    has to be the session's own account, the email the session was made for."""
    box = billing_box_factory()
    box.customer("early")
    backup = box.config.parent / "before-alice.db"
    assert run_cli(box.config, "backup", str(backup)).returncode == 0
    alice = box.customer("alice")
    topup_id = box.start_topup(alice, 25)
    assert box.deliver(box.double.complete(topup_id, "unpaid")).json()["result"] == "waiting"
    setup_id = box.start_setup(alice)
    box.server.stop()
    gc.collect()  # the test's own read-only connections, which restore would find open
    restored = run_cli(box.config, "restore", str(backup))
    assert restored.returncode == 0, restored.stderr
    box.server.start()
    bob = box.customer("bob")
    assert bob.user_id == alice.user_id  # the number Alice had, now Bob's
    settled = box.deliver(box.double.succeed_async(topup_id))
    assert settled.json()["result"] == "account_not_found", settled.text
    card = box.deliver(box.double.complete(setup_id))
    assert card.json()["result"] == "unknown_session", card.text
    assert box.balance_nanos(bob) == 0
    assert box.history(bob) == []
    listed = run_cli(box.config, "audit", "--json")
    (entry,) = [e for e in json.loads(listed.stdout) if e["command"] == "stripe top-up refused"]
    assert entry["target"] == topup_id and entry["after"]["customer_email"] == alice.email
