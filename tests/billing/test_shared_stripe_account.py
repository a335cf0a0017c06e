"""Two boxes on one Stripe account: Stripe sends every event of the account to both webhook
endpoints, so each box must act only on the sessions it created itself, even where the other
box's session names an account id (client_reference_id, metadata) that exists on both."""

from __future__ import annotations

import secrets

import pytest

from tests.billing.conftest import BillingBox, BoxFactory, Customer

pytestmark = pytest.mark.timeout(120)
NANOS = 1_000_000_000


@pytest.fixture(scope="module")
def pair(billing_box_factory: BoxFactory) -> tuple[BillingBox, BillingBox]:
    return billing_box_factory(), billing_box_factory()


def twins(pair: tuple[BillingBox, BillingBox]) -> tuple[Customer, Customer]:
    """One fresh account on each box, with the same user id."""
    ours, theirs = pair
    mine, other = ours.customer("ours"), theirs.customer("theirs")
    while other.user_id < mine.user_id:
        other = theirs.customer("theirs")
    while mine.user_id < other.user_id:
        mine = ours.customer("ours")
    assert mine.user_id == other.user_id
    return mine, other


def test_a_card_set_up_on_the_other_box_earns_no_trial_here(
    pair: tuple[BillingBox, BillingBox],
) -> None:
    ours, theirs = pair
    mine, other = twins(pair)
    event = theirs.double.complete(theirs.start_setup(other), card_fingerprint=secrets.token_hex(6))
    assert ours.deliver(event).json()["result"] == "unknown_session"
    assert ours.balance_nanos(mine) == 0
    assert ours.history(mine) == []
    assert theirs.deliver(event).json()["result"] == "trial_granted"
    assert theirs.balance_nanos(other) == 1 * NANOS
    # Our account keeps its own trial for a card of its own, set up on our box.
    own = ours.double.complete(ours.start_setup(mine), card_fingerprint=secrets.token_hex(6))
    assert theirs.deliver(own).json()["result"] == "unknown_session"
    assert ours.deliver(own).json()["result"] == "trial_granted"


def test_a_top_up_paid_on_the_other_box_credits_nothing_here(
    pair: tuple[BillingBox, BillingBox],
) -> None:
    ours, theirs = pair
    mine, other = twins(pair)
    event = theirs.double.complete(theirs.start_topup(other, 25))
    assert ours.deliver(event).json()["result"] == "unknown_session"
    assert ours.balance_nanos(mine) == 0
    assert theirs.deliver(event).json()["result"] == "credited"
    assert theirs.balance_nanos(other) == 25 * NANOS
