"""The trial credit (once per account, once per card, read from Stripe's SetupIntent), the
payment history, and the books: after everything, every balance equals its ledger and
`codelace-box doctor` agrees."""

from __future__ import annotations

import asyncio
import re
import secrets

import httpx
import pytest

from tests.billing.conftest import BillingBox, BoxFactory, Customer, stripe_section
from tests.support import TLS, is_uuid4, run_cli

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


def test_with_the_trial_off_a_card_setup_grants_nothing_and_says_so(
    billing_box_factory: BoxFactory, box: BillingBox
) -> None:
    stingy = billing_box_factory(stripe=stripe_section(box.double, trial_credit_usd=0))
    ivo = stingy.customer("ivo")
    assert set_up_card(stingy, ivo, card()) == "trial_off"
    assert trials(stingy, ivo) == [] and stingy.history(ivo) == []
    assert stingy.balance_nanos(ivo) == 0


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
        async with httpx.AsyncClient(
            base_url=box.server.base_url, timeout=30, verify=TLS
        ) as client:
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


def test_stripe_failing_to_show_the_card_is_retried_by_stripe(box: BillingBox) -> None:
    gus = box.customer("gus")
    event = box.double.complete(box.start_setup(gus), card_fingerprint=card())
    events_before = box.query("SELECT COUNT(*) FROM stripe_event")
    box.double.inject_error(404, "No such setup_intent: 'seti_gone'")
    failed = box.deliver(event)
    assert failed.status_code == 502, failed.text  # not 2xx: Stripe delivers it again later
    assert box.query("SELECT COUNT(*) FROM stripe_event") == events_before
    assert box.balance_nanos(gus) == 0
    assert box.deliver(event).json()["result"] == "trial_granted"
    assert box.balance_nanos(gus) == 1 * NANOS


def test_a_setup_session_the_box_did_not_create_grants_nothing(box: BillingBox) -> None:
    hal = box.customer("hal")
    # Another integration on the same Stripe account, with a numeric reference of its own.
    foreign = box.double.handle(
        "POST",
        "/v1/checkout/sessions",
        {"mode": "setup", "currency": "usd", "client_reference_id": str(hal.user_id)},
    )
    event = box.double.complete(foreign["id"], card_fingerprint=card())
    assert box.deliver(event).json()["result"] == "unknown_session"
    assert box.balance_nanos(hal) == 0
    assert not box.double.calls("GET", f"/v1/setup_intents/{foreign['setup_intent']}")


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
        assert set(payment) == {"id", "amount_usd", "kind", "status", "created_at", "refunded_usd"}
        assert payment["refunded_usd"] == 0  # no refund nor dispute: nothing taken back
        assert is_uuid4(payment["id"]), payment["id"]
        assert ISO_Z.match(payment["created_at"]), payment["created_at"]
    assert len({p["id"] for p in history}) == len(history)
    stored = box.query(
        "SELECT uuid FROM payment WHERE user_id = ? ORDER BY created_at DESC, id DESC",
        eve.user_id,
    )
    assert [p["id"] for p in history] == [row[0] for row in stored]  # newest first
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


def test_the_return_page_of_a_card_setup_speaks_of_the_card_not_a_payment(
    box: BillingBox,
) -> None:
    jo = box.customer("jo")
    granted = box.start_setup(jo)
    box.deliver(box.double.complete(granted, card_fingerprint=card()))
    page = box.http.get("/billing/success", params={"session_id": granted}).text
    assert "Card saved" in page and "$1.00 trial credit is on your balance" in page
    again = box.start_setup(jo)  # the trial came already: this setup earns nothing
    box.deliver(box.double.complete(again, card_fingerprint=card()))
    page = box.http.get("/billing/success", params={"session_id": again}).text
    assert "Payment received" not in page and "Your credit appears" not in page
    assert "Any credit" in page


def test_two_setups_of_one_account_completing_at_once_earn_one_trial(box: BillingBox) -> None:
    ivy = box.customer("ivy")
    events = [box.double.complete(box.start_setup(ivy), card_fingerprint=card()) for _ in "ab"]

    async def deliver_both() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=box.server.base_url, timeout=30, verify=TLS
        ) as client:
            deliveries = [box.double.webhook(e) for e in events]
            return await asyncio.gather(
                *(
                    client.post("/api/v1/stripe/webhook", content=b, headers=h)
                    for b, h in deliveries
                )
            )

    results = sorted(r.json()["result"] for r in asyncio.run(deliver_both()))
    assert results == ["trial_already_granted", "trial_granted"]
    assert trials(box, ivy) == [("trial", 1 * NANOS, f"trial:{ivy.user_id}")]
    assert [p["kind"] for p in box.history(ivy)] == ["trial"]


def test_the_ledger_and_doctor_agree_after_everything(box: BillingBox) -> None:
    """Runs last in this module: every account touched above must still add up, and so must
    one more that took a trial and a top-up (so the check also has work when run alone)."""
    last = box.customer("last")
    assert set_up_card(box, last, card()) == "trial_granted"
    session_id = box.start_topup(last, 15)
    assert box.deliver(box.double.complete(session_id)).json()["result"] == "credited"
    assert box.balance_nanos(last) == 16 * NANOS
    rows = box.query(
        'SELECT u.id, u.balance_nanos, COALESCE(SUM(l.amount_nanos), 0) FROM "user" u '
        "LEFT JOIN ledger_entry l ON l.user_id = u.id GROUP BY u.id"
    )
    assert any(balance > 0 for _, balance, _ in rows)
    assert all(balance == ledger for _, balance, ledger in rows), rows
    box.audit()
