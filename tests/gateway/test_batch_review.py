"""Adversarial checks of the group commit's batches of steps (db/turns.py `run_interleaved`):
a batch must leave the accounts as its writes one after the other would, whatever a write
does after its first turn and whatever plain write comes after it in the same batch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from codelace_box import metrics
from codelace_box.accounts.keys import create_key
from codelace_box.accounts.users import create_user
from codelace_box.billing.ledger import find_mismatches
from codelace_box.db.batch import CAREFUL_BATCHES, WriteBatch
from codelace_box.db.core import Tx, query_all
from codelace_box.db.models import ApiKey, Hold, User
from codelace_box.db.offload import stop_db_thread
from codelace_box.errors import InsufficientCredits, RateLimited
from codelace_box.gateway.admission import Admission
from codelace_box.gateway.holds import release_holds_in
from codelace_box.gateway.metering import (
    admit,
    admit_steps,
    settle_steps,
)
from tests.gateway.batches import funded_user, outcomes, priced_settlement

pytestmark = pytest.mark.timeout(60)


async def test_a_hold_sweep_batched_after_a_settlement_keeps_held_the_sum_of_the_holds(
    batch: WriteBatch,
) -> None:
    """The hold sweep (Gateway.sweep_holds: `release_holds_in`, a plain write) recounts every
    account's held_nanos from its holds. Were it run between a settlement's turns (its hold
    deleted, its release of held_nanos still to come), that release would count twice (held
    below the holds: the account could spend what is reserved). A plain write runs whole
    before the steps' first turns, which keeps it out of them."""
    user_id = funded_user("sweep@example.com", 100_000)
    key = create_key(user_id, "capped", {"limit_usd": 1}).key
    limits = Admission(key_id=key.id)
    admit(user_id, "s1", 20_000, limits)
    admit(user_id, "s2", 20_000, limits)
    admit(user_id, "leaked", 10_000, limits)
    futures = [
        batch.submit(partial(settle_steps, item=priced_settlement("s1", user_id, 5_000, key.id))),
        batch.submit(partial(release_holds_in, request_ids=["leaked"])),
    ]
    assert await outcomes(futures) == [5_000, 1]
    user = User.get_by_id(user_id)
    assert (user.balance_nanos, user.held_nanos) == (95_000, 20_000)  # s2's hold
    assert ApiKey.get_by_id(key.id).held_nanos == 20_000
    assert find_mismatches() == []


async def test_an_admission_whose_key_got_a_budget_is_settled_after_it_in_the_same_batch(
    batch: WriteBatch,
) -> None:
    """The key lookup saw no budget, one was set since: the admission writes its hold only
    after its first turn. A client that left at once queues the hold's release behind it
    (Gateway.reserve), in the same batch: that release must find the hold, not leave it."""
    user_id = funded_user("stale@example.com", 100_000)
    key = create_key(user_id, "later-capped", {"limit_usd": 1}).key
    stale = Admission(key_id=key.id, key_budgeted=False)  # what the lookup saw
    futures = [
        batch.submit(partial(admit_steps, user_id=user_id, request_id="r1", amount_nanos=20_000,
                             limits=stale)),
        batch.submit(partial(settle_steps, item=priced_settlement("r1", user_id, 0, key.id))),
    ]  # fmt: skip
    assert await outcomes(futures) == [None, 0]
    assert Hold.select().count() == 0
    user = User.get_by_id(user_id)
    assert (user.balance_nanos, user.held_nanos) == (100_000, 0)
    assert ApiKey.get_by_id(key.id).held_nanos == 0
    assert find_mismatches() == []


async def test_max_concurrent_counts_the_hold_of_an_admission_whose_key_got_a_budget(
    batch: WriteBatch,
) -> None:
    """The same late hold must be counted by a later admission of the account in the batch
    that checks max_concurrent: one request in flight at most means the second is a 429."""
    user_id = funded_user("concurrent@example.com", 100_000)
    key = create_key(user_id, "later-capped", {"limit_usd": 1}).key
    stale = Admission(key_id=key.id, key_budgeted=False)
    limited = Admission(key_id=key.id, max_concurrent=1, key_budgeted=True)
    futures = [
        batch.submit(partial(admit_steps, user_id=user_id, request_id="c1", amount_nanos=1_000,
                             limits=stale)),
        batch.submit(partial(admit_steps, user_id=user_id, request_id="c2", amount_nanos=1_000,
                             limits=limited)),
    ]  # fmt: skip
    first, second = await outcomes(futures)
    assert first is None
    assert isinstance(second, RateLimited), second
    _holds_only(user_id, "c1", 1_000)


def _holds_only(user_id: int, request_id: str, nanos: int) -> None:
    """The one admission's hold is the only one, held once, and the ledger agrees."""
    assert [h.request_id for h in Hold.select()] == [request_id]
    assert User.get_by_id(user_id).held_nanos == nanos
    assert find_mismatches() == []


def _sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_batch_run_again_after_a_refusal_counts_its_settlements_once(
    batch: WriteBatch,
) -> None:
    """A refusal in a batch of turns makes it run again careful: the settlement ran (and
    counted) in both runs, and the metrics must count it once, with its tokens once."""
    user_id = funded_user("metrics@example.com", 100_000)
    admit(user_id, "m1", 60_000)
    item = priced_settlement("m1", user_id, 4_000)
    item.model = "acme/review-metrics"
    labels = {"model": item.model, "provider": "acme"}
    futures = [
        batch.submit(partial(settle_steps, item=item)),
        batch.submit(partial(admit_steps, user_id=user_id, request_id="m2", amount_nanos=99_000)),
    ]
    settled, refused = await outcomes(futures)
    assert settled == 4_000
    assert isinstance(refused, InsufficientCredits), refused
    assert _sample("codelace_inference_requests_total", {**labels, "outcome": "ok"}) == 1
    assert _sample("codelace_tokens_total", {**labels, "kind": "output"}) == 4_000
    assert find_mismatches() == []


@pytest.mark.parametrize("moment", ["queued", "handed", "draining"])
async def test_writes_queued_as_the_write_thread_stops_are_told(
    batch: WriteBatch, moment: str
) -> None:
    """The write thread stopped with writes queued: before their flush, once the flush handed
    them to a drain not started yet, or while the drain runs. Each caller is told (its write
    done, or an error), none is left waiting, and `written()` returns."""
    user_id = funded_user("stopped@example.com", 100_000)
    first = batch.submit(partial(admit_steps, user_id=user_id, request_id="t1", amount_nanos=1))
    if moment == "handed":
        batch.flush()  # PostgreSQL: the drain is a task not yet run
    elif moment == "draining":
        await asyncio.sleep(0)  # the flush ran, and the task that hands the drain to the thread
    second = batch.submit(partial(admit_steps, user_id=user_id, request_id="t2", amount_nanos=1))
    stop_db_thread()
    told = await asyncio.wait_for(outcomes([first, second]), timeout=10)
    assert all(o is None or isinstance(o, Exception) for o in told), told
    assert Hold.select().count() == sum(o is None for o in told)
    await asyncio.wait_for(batch.written(), timeout=10)


async def test_a_key_cap_freed_by_a_settlement_earlier_in_the_batch_admits_as_one_after_the_other(
    batch: WriteBatch,
) -> None:
    """In turns a later admission on a capped key reads the key before the earlier settlement
    releases it (its hold still counted): refused there, the batch runs again careful and
    admits it, as one request after the other would."""
    user_id = funded_user("keycap@example.com", 1_000_000)
    key = create_key(user_id, "capped", {"limit_usd": "0.0001"}).key  # 100,000 nano-USD
    limits = Admission(key_id=key.id)
    admit(user_id, "k1", 60_000, limits)
    futures = [
        batch.submit(partial(settle_steps, item=priced_settlement("k1", user_id, 10_000, key.id))),
        batch.submit(partial(admit_steps, user_id=user_id, request_id="k2", amount_nanos=80_000,
                             limits=limits)),
    ]  # fmt: skip
    assert await outcomes(futures) == [10_000, None]
    fresh = ApiKey.get_by_id(key.id)
    assert (fresh.held_nanos, fresh.spent_nanos) == (80_000, 10_000)
    assert User.get_by_id(user_id).held_nanos == 80_000
    assert find_mismatches() == []


async def test_the_same_request_admitted_twice_in_a_batch_holds_once(batch: WriteBatch) -> None:
    """The second hold of a request id breaks its unique index only when the batch's answers
    are all in (at its COMMIT, on PostgreSQL in turns): the batch runs again careful, the
    second admission fails alone, and the account holds the amount once."""
    user_id = funded_user("twice@example.com", 100_000)
    futures = [
        batch.submit(partial(admit_steps, user_id=user_id, request_id="d1", amount_nanos=7_000))
        for _ in range(2)
    ]
    first, second = await outcomes(futures)
    assert first is None
    assert isinstance(second, Exception), second
    _holds_only(user_id, "d1", 7_000)


async def test_a_hold_sweep_queued_after_a_settlement_of_the_same_request_comes_after_it(
    batch: WriteBatch,
) -> None:
    """The writes of a batch take effect in the order they were queued: a sweep releasing a
    request's hold, queued after that request's settlement, finds it settled (in turns too,
    where a plain write must not run ahead of the steps queued before it: the call would go
    unbilled)."""
    user_id = funded_user("order@example.com", 100_000)
    admit(user_id, "o1", 20_000)
    futures = [
        batch.submit(partial(settle_steps, item=priced_settlement("o1", user_id, 5_000))),
        batch.submit(partial(release_holds_in, request_ids=["o1"])),
    ]
    assert await outcomes(futures) == [5_000, 0]
    user = User.get_by_id(user_id)
    assert (user.balance_nanos, user.held_nanos) == (95_000, 0)
    assert find_mismatches() == []


def _held_by_one(user_id: int, runs: list[str], name: str) -> Callable[[Tx], int]:
    def write(tx: Tx) -> int:
        runs.append(name)
        tx.execute('UPDATE "user" SET held_nanos = held_nanos + 1 WHERE id = ?', (user_id,))
        metrics.inference("refused/model", "refused", "ok").inc()
        return tx.changes()

    return write


async def test_a_refused_write_makes_its_batch_run_again_with_savepoints(
    batch: WriteBatch,
) -> None:
    """A batch runs without savepoints (both engines); a write that fails (here a refusal
    after it wrote) makes it run again, each write in its savepoint: the refusal undoes only
    its own write, the others' results and metrics count once, and the next batches start
    careful (a client refused again and again costs no rerun each time)."""
    user = create_user("refused@batch.test").id
    runs: list[str] = []
    counter = metrics.inference("refused/model", "refused", "ok")
    before = counter._value.get()

    def refused(tx: Tx) -> None:
        runs.append("refused")
        tx.execute('UPDATE "user" SET held_nanos = held_nanos + 100 WHERE id = ?', (user,))
        raise InsufficientCredits("no")

    results = await outcomes([
        batch.submit(_held_by_one(user, runs, "a")), batch.submit(refused),
        batch.submit(_held_by_one(user, runs, "b")),
    ])  # fmt: skip
    assert results[0] == 1 and results[2] == 1 and isinstance(results[1], InsufficientCredits)
    assert runs == ["a", "refused", "a", "refused", "b"]
    assert counter._value.get() - before == 2
    assert batch.careful_left == CAREFUL_BATCHES
    runs.clear()
    await outcomes([batch.submit(_held_by_one(user, runs, "c")), batch.submit(refused)])
    assert runs == ["c", "refused"], "careful from the start: no rerun"
    assert query_all('SELECT held_nanos FROM "user" WHERE id = ?', (user,)) == [(3,)]


async def test_a_batch_run_on_the_loop_fails_only_the_write_that_failed(migrated_db: Path) -> None:
    """Without the write thread (not started yet, or stopped at shutdown with writes still
    queued) a batch runs on the loop, in turns on either engine. On PostgreSQL a pipelined
    statement's error (here the second hold of a request id, never read) surfaces only at
    the COMMIT, where no write can be told from another: the batch must run again careful,
    so the writes beside it are still done, not all failed with it."""
    batch = WriteBatch()  # no write thread
    user_id = funded_user("loop@example.com", 100_000)
    other = funded_user("beside@example.com", 100_000)
    futures = [
        batch.submit(partial(admit_steps, user_id=other, request_id="o1", amount_nanos=1_000)),
        batch.submit(partial(admit_steps, user_id=user_id, request_id="d1", amount_nanos=7_000)),
        batch.submit(partial(admit_steps, user_id=user_id, request_id="d1", amount_nanos=7_000)),
    ]
    first, second, twice = await outcomes(futures)
    assert (first, second) == (None, None)
    assert isinstance(twice, Exception), twice
    assert sorted(h.request_id for h in Hold.select()) == ["d1", "o1"]
    assert find_mismatches() == []
