"""Three boxes on one PostgreSQL database: a Stripe event delivered to all of them at once
credits once (and the books add up on every box)."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import threading
import time
from typing import Any

import httpx
import psycopg
import pytest

from tests.billing.conftest import BillingBox, BoxFactory
from tests.pg_cluster import SHARED_SECRET
from tests.support import TLS

pytestmark = pytest.mark.timeout(180)
NANOS = 1_000_000_000


async def deliver_to_all(boxes: list[BillingBox], events: list[dict[str, Any]]) -> list[Any]:
    """Every event on its own connection, all at once, spread over the boxes."""
    deliveries = [boxes[0].double.webhook(event) for event in events]
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=30, limits=limits, verify=TLS) as client:
        urls = itertools.cycle(box.server.base_url for box in boxes)
        return await asyncio.gather(
            *(
                client.post(f"{next(urls)}/api/v1/stripe/webhook", content=body, headers=headers)
                for body, headers in deliveries
            )
        )


def test_one_stripe_event_delivered_to_three_boxes_credits_once(
    billing_box_factory: BoxFactory, pg_url: str
) -> None:
    shared = {"database": {"url": pg_url}, "server": {"secret_key": SHARED_SECRET}}
    boxes = [billing_box_factory(**shared) for _ in range(3)]
    first = boxes[0]
    buyer = first.customer("many")
    session_id = first.start_topup(buyer, 25)
    paid = first.double.complete(session_id)
    again = first.double.event("checkout.session.completed", first.double.session(session_id))
    responses = asyncio.run(deliver_to_all(boxes, [paid] * 6 + [again] * 3))
    assert [r.status_code for r in responses] == [200] * 9
    results = [r.json()["result"] for r in responses]
    assert results.count("credited") == 1, results
    for box in boxes:
        assert box.balance_nanos(buyer) == 25 * NANOS
    assert first.payment_status(session_id) == "completed"
    first.audit()


def _until_locks_are_awaited(url: str, count: int) -> None:
    """Return once `count` connections of the database wait for a lock (10 s at most)."""
    deadline = time.monotonic() + 10
    with psycopg.connect(url, autocommit=True) as conn:
        waiting = "SELECT COUNT(*) FROM pg_locks WHERE NOT granted"
        while conn.execute(waiting).fetchone()[0] < count:  # type: ignore[index]
            assert time.monotonic() < deadline, "the deliveries never met at the trial's lock"
            time.sleep(0.01)


def _delivered_at_once(
    pg_url: str, boxes: list[BillingBox], events: list[dict[str, Any]], trial_users: list[int]
) -> list[httpx.Response]:
    """Each event delivered to its box at once, while the trials' ledger keys of these
    accounts are held, so that both deliveries meet there; both answers (each a 200)."""
    answers: list[httpx.Response] = []
    lock = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
    with psycopg.connect(pg_url) as holder:
        for user_id in trial_users:
            holder.execute(lock, (f"ledger:trial:{user_id}",))
        threads = [
            threading.Thread(target=lambda b=box, e=event: answers.append(b.deliver(e)))
            for box, event in zip(boxes, events, strict=True)
        ]
        for thread in threads:
            thread.start()
        _until_locks_are_awaited(pg_url, len(threads))
        holder.rollback()
    for thread in threads:
        thread.join(30)
    assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
    return answers


def test_two_setups_of_one_account_on_two_boxes_at_once_earn_one_trial(
    billing_box_factory: BoxFactory, pg_url: str
) -> None:
    """Two card setups of one account complete at once on two boxes: both read "no trial yet"
    before either commits, and meet at the trial's ledger key. The second must see the trial
    the first posted and grant nothing: no second trial payment in the history (a credit that
    never happened) and its card not marked as one that earned a trial."""
    shared = {"database": {"url": pg_url}, "server": {"secret_key": SHARED_SECRET}}
    boxes = [billing_box_factory(**shared) for _ in range(2)]
    ivy = boxes[0].customer("ivy")
    cards = [f"fp_{secrets.token_hex(6)}" for _ in boxes]
    events = [
        box.double.complete(boxes[0].start_setup(ivy), card_fingerprint=fingerprint)
        for box, fingerprint in zip(boxes, cards, strict=True)
    ]
    answers = _delivered_at_once(pg_url, boxes, events, [ivy.user_id])
    results = sorted(r.json()["result"] for r in answers)
    assert results == ["trial_already_granted", "trial_granted"]
    assert boxes[0].balance_nanos(ivy) == 1 * NANOS
    assert [p["kind"] for p in boxes[0].history(ivy)] == ["trial"]
    used = boxes[0].query("SELECT COUNT(*) FROM trial_card WHERE user_id = ?", ivy.user_id)
    assert used == [(1,)]
    boxes[0].audit()


def test_one_card_set_up_by_two_accounts_on_two_boxes_at_once_earns_one_trial(
    billing_box_factory: BoxFactory, pg_url: str
) -> None:
    """Two accounts save the same card at once on two boxes: both read "card never used"
    before either commits. The second must answer trial_card_used, not fail on the card's
    row with a 500 (which Stripe would only retry later)."""
    shared = {"database": {"url": pg_url}, "server": {"secret_key": SHARED_SECRET}}
    boxes = [billing_box_factory(**shared) for _ in range(2)]
    people = [boxes[0].customer("twin") for _ in boxes]
    fingerprint = f"fp_{secrets.token_hex(6)}"
    events = [
        boxes[0].double.complete(boxes[0].start_setup(p), card_fingerprint=fingerprint)
        for p in people
    ]
    answers = _delivered_at_once(pg_url, boxes, events, [p.user_id for p in people])
    results = sorted(r.json()["result"] for r in answers)
    assert results == ["trial_card_used", "trial_granted"]
    assert sum(boxes[0].balance_nanos(p) for p in people) == 1 * NANOS
    boxes[0].audit()


def test_refunds_and_a_dispute_on_three_boxes_at_once_take_back_once(
    billing_box_factory: BoxFactory, pg_url: str
) -> None:
    """Two partial refunds of one top-up, each event delivered to every box at once, take
    back their sum once; a dispute of the whole charge after them takes the rest, no more."""
    shared = {"database": {"url": pg_url}, "server": {"secret_key": SHARED_SECRET}}
    boxes = [billing_box_factory(**shared) for _ in range(3)]
    first = boxes[0]
    buyer = first.customer("refunded")
    session_id = first.start_topup(buyer, 40)
    assert first.deliver(first.double.complete(session_id)).json()["result"] == "credited"
    refunds = first.double.refund(session_id, amount=1_000) + first.double.refund(
        session_id, amount=1_500
    )
    responses = asyncio.run(deliver_to_all(boxes, refunds * 3))
    assert [r.status_code for r in responses] == [200] * 12, [r.text for r in responses]
    assert first.balance_nanos(buyer) == 15 * NANOS
    dispute = first.double.dispute(session_id)
    responses = asyncio.run(deliver_to_all(boxes, [dispute] * 3))
    assert [r.status_code for r in responses] == [200] * 3
    for box in boxes:
        assert box.balance_nanos(buyer) == 0
    taken = first.query(
        "SELECT SUM(amount_nanos) FROM ledger_entry WHERE user_id = ? AND kind = 'refund'",
        buyer.user_id,
    )
    assert taken == [(-40 * NANOS,)]
    first.audit()
