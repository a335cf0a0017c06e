"""The trial credit (once per account, once per card, read from Stripe's SetupIntent), the
payment history, and the books: after everything, every balance equals its ledger and
`codelace-box doctor` agrees."""

from __future__ import annotations

import asyncio
import re
import secrets

import httpx
import pytest

from tests.billing.conftest import BillingBox, Customer
from tests.support import run_cli

pytestmark = pytest.mark.timeout(120)
NANOS = 1_000_000_000
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def card() -> str:
    return "fp_" + secrets.token_hex(6)


def set_up_card(box: BillingBox, who: Customer, fingerprint: str, **kwargs: str) -> str:
    """The customer saves a card through a setup checkout; the box's answer to the webhook."""
    session_id = box.start_setup(who)
    event = box.double.complete(session_id, card_fingerprint=fingerprint, **kwargs)
    response = box.deliver(event)
    assert response.status_code == 200, response.text
    return str(response.json()["result"])


def trials(box: BillingBox, who: Customer) -> list[tuple[object, ...]]:
    return [row for row in box.ledger(who) if row[0] == "trial"]


def test_the_first_card_setup_grants_the_trial_once_per_account(box: BillingBox) -> None:
    ana = box.customer("ana")
    assert set_up_card(box, ana, card()) == "trial_granted"
    assert trials(box, ana) == [("trial", 1 * NANOS, f"trial:{ana.user_id}")]
    assert box.balance_nanos(ana) == 1 * NANOS
    [payment] = box.history(ana)
    assert (payment["kind"], payment["status"], payment["amount_usd"]) == ("trial", "completed", 1)
    # A second card on the same account earns nothing more.
    assert set_up_card(box, ana, card()) == "trial_already_granted"
    assert box.balance_nanos(ana) == 1 * NANOS
    assert len(box.history(ana)) == 1


def test_the_box_reads_the_card_from_stripe(box: BillingBox) -> None:
    ben = box.customer("ben")
    session_id = box.start_setup(ben)
    event = box.double.complete(session_id, card_fingerprint=card())
    box.deliver(event)
    intent_id = box.double.session(session_id)["setup_intent"]
    [call] = box.double.calls("GET", f"/v1/setup_intents/{intent_id}")
    assert call["params"]["expand"] == ["payment_method"]


def test_one_card_earns_one_trial_across_accounts(box: BillingBox) -> None:
    shared = card()
    first, second = box.customer("first"), box.customer("second")
    assert set_up_card(box, first, shared) == "trial_granted"
    assert set_up_card(box, second, shared) == "trial_card_used"
    assert box.balance_nanos(second) == 0
    assert box.history(second) == []
    # The second account can still earn its own trial with a card of its own.
    assert set_up_card(box, second, card()) == "trial_granted"
    assert box.balance_nanos(second) == 1 * NANOS


def test_one_card_set_up_by_two_accounts_at_once_earns_one_trial(box: BillingBox) -> None:
    shared = card()
    people = [box.customer("race") for _ in range(4)]
    events = [box.double.complete(box.start_setup(p), card_fingerprint=shared) for p in people]

    async def deliver_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=box.server.base_url, timeout=30) as client:
            deliveries = [box.double.webhook(e) for e in events]
            return await asyncio.gather(
                *(
                    client.post("/api/v1/stripe/webhook", content=b, headers=h)
                    for b, h in deliveries
                )
            )

    responses = asyncio.run(deliver_all())
    assert sorted(r.json()["result"] for r in responses) == ["trial_card_used"] * 3 + [
        "trial_granted"
    ]
    assert sum(box.balance_nanos(p) for p in people) == 1 * NANOS


def test_a_setup_without_a_card_grants_nothing(box: BillingBox) -> None:
    cleo = box.customer("cleo")
    assert set_up_card(box, cleo, "", payment_method_type="sepa_debit") == "trial_no_card"
    assert box.balance_nanos(cleo) == 0
    assert set_up_card(box, cleo, card()) == "trial_granted"


def test_a_redelivered_setup_event_grants_nothing_more(box: BillingBox) -> None:
    dan = box.customer("dan")
    event = box.double.complete(box.start_setup(dan), card_fingerprint=card())
    results = [box.deliver(event).json()["result"] for _ in range(3)]
    assert results == ["trial_granted", "duplicate", "duplicate"]
    assert box.balance_nanos(dan) == 1 * NANOS


def test_payment_history_shape_and_order(box: BillingBox) -> None:
    eve = box.customer("eve")
    credited = run_cli(box.config, "credit", eve.email, "5", "--reason", "welcome")
    assert credited.returncode == 0, credited.stderr
    paid = box.start_topup(eve, 20)
    box.deliver(box.double.complete(paid))
    set_up_card(box, eve, card())
    box.start_topup(eve, 50)
    expired = box.start_topup(eve, 60)
    box.deliver(box.double.expire(expired))
    history = box.history(eve)
    assert [(p["kind"], p["status"], p["amount_usd"]) for p in history] == [
        ("topup", "expired", 60),
        ("topup", "pending", 50),
        ("trial", "completed", 1),
        ("topup", "completed", 20),
        ("admin", "completed", 5),
    ]
    for payment in history:
        assert set(payment) == {"id", "amount_usd", "kind", "status", "created_at"}
        assert isinstance(payment["id"], int)
        assert ISO_Z.match(payment["created_at"]), payment["created_at"]
    assert [p["id"] for p in history] == sorted((p["id"] for p in history), reverse=True)
    limited = box.get("/api/v1/customer/payment", eve, params={"limit": 2}).json()
    assert limited == history[:2]
    # Another account sees none of it.
    assert box.history(box.customer("other")) == []
    assert box.balance_nanos(eve) == 26 * NANOS


def test_success_page_shows_a_completed_payment(box: BillingBox) -> None:
    fay = box.customer("fay")
    session_id = box.start_topup(fay, 42)
    box.deliver(box.double.complete(session_id))
    page = box.http.get("/billing/success", params={"session_id": session_id})
    assert "$42.00 is on your balance" in page.text


def test_the_ledger_and_doctor_agree_after_everything(box: BillingBox) -> None:
    """Runs last in this module: every account touched above must still add up."""
    rows = box.query(
        "SELECT u.id, u.balance_nanos, COALESCE(SUM(l.amount_nanos), 0) FROM user u "
        "LEFT JOIN ledger_entry l ON l.user_id = u.id GROUP BY u.id"
    )
    assert len(rows) > 10
    assert all(balance == ledger for _, balance, ledger in rows), rows
    box.audit()
