"""The running totals and rollups a write transaction counts are summed per row and written
at its COMMIT (db/totals.py): the same figures as one upsert per request, nothing from a
savepoint or a transaction that rolled back, at once outside a transaction; on a real
database file (and on PostgreSQL with CODELACE_TEST_DATABASE=postgres)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from codelace_box.accounts.keys import create_key
from codelace_box.accounts.users import create_user
from codelace_box.db.batch import WriteBatch
from codelace_box.db.core import (
    Savepoint,
    Tx,
    close_database,
    connection,
    database,
    open_database,
    query_all,
    write_transaction,
)
from codelace_box.db.migrate import migrate
from codelace_box.db.offload import start_write_thread, stop_db_thread
from codelace_box.errors import InsufficientCredits
from codelace_box.gateway.metering import count_in_totals
from tests.pg_cluster import wanted_engine

MINUTE_ONE, MINUTE_TWO = "2026-03-01 12:00:10.000000", "2026-03-01 12:01:05.000000"
GPT, CLAUDE = "openai/gpt-5.4", "anthropic/claude-opus-4.6"


@pytest.fixture
def ids(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[int, int, int]]:
    postgres = wanted_engine() == "postgres"
    db = open_database(request.getfixturevalue("pg_url") if postgres else tmp_path / "t.db")
    try:
        migrate(db)
        alice, bob = create_user("a@x.test"), create_user("b@x.test")
        key = create_key(alice.id, "ci").key
        yield int(alice.id), int(bob.id), int(key.id)
    finally:
        close_database()


def totals() -> dict[str, list[tuple[object, ...]]]:
    return {
        "accounts": query_all(
            "SELECT user_id, requests, errors, input_tokens, output_tokens, cache_read_tokens,"
            " cost_nanos, last_request_at FROM account_usage ORDER BY user_id"
        ),
        "keys": query_all(
            "SELECT api_key_id, user_id, requests, input_tokens, cost_nanos, last_request_at"
            " FROM key_usage ORDER BY api_key_id"
        ),
        "rollups": query_all(
            "SELECT period, bucket, model, requests, errors, output_tokens, cost_nanos"
            " FROM usage_rollup ORDER BY period, bucket, model"
        ),
    }


def stamp(value: object) -> str:
    return str(value)[:19]


def test_a_batch_writes_the_sums_of_its_requests(ids: tuple[int, int, int]) -> None:
    alice, bob, key = ids
    with write_transaction() as tx:
        count_in_totals(tx, (alice, key, GPT), "ok", (100, 10, 5, 0, 1000), MINUTE_TWO)
        count_in_totals(tx, (alice, key, GPT), "error", (7, 0, 0, 0, 0), MINUTE_ONE)
        count_in_totals(tx, (alice, None, CLAUDE), "ok", (20, 2, 0, 3, 300), MINUTE_ONE)
        count_in_totals(tx, (bob, None, GPT), "ok", (1, 1, 0, 0, 11), MINUTE_ONE)
        assert query_all("SELECT COUNT(*) FROM account_usage")[0][0] == 0  # at the COMMIT
    found = totals()
    accounts = [(*row[:7], stamp(row[7])) for row in found["accounts"]]
    assert accounts == [
        (alice, 3, 1, 127, 12, 5, 1300, MINUTE_TWO[:19]),
        (bob, 1, 0, 1, 1, 0, 11, MINUTE_ONE[:19]),
    ]
    assert [(*row[:5], stamp(row[5])) for row in found["keys"]] == [
        (key, alice, 2, 107, 1000, MINUTE_TWO[:19])
    ]
    assert found["rollups"] == [
        ("day", "2026-03-01", CLAUDE, 1, 0, 2, 300),
        ("day", "2026-03-01", GPT, 3, 1, 11, 1011),
        ("minute", "2026-03-01 12:00", CLAUDE, 1, 0, 2, 300),
        ("minute", "2026-03-01 12:00", GPT, 2, 1, 1, 11),
        ("minute", "2026-03-01 12:01", GPT, 1, 0, 10, 1000),
    ]


def test_a_later_batch_adds_to_what_is_there(ids: tuple[int, int, int]) -> None:
    alice, _, key = ids
    for cost in (5, 7):
        with write_transaction() as tx:
            count_in_totals(tx, (alice, key, GPT), "ok", (1, 1, 0, 0, cost), MINUTE_ONE)
    assert [row[:7] for row in totals()["accounts"]] == [(alice, 2, 0, 2, 2, 0, 12)]
    assert [row[:5] for row in totals()["keys"]] == [(key, alice, 2, 2, 12)]


def test_a_savepoint_that_rolls_back_takes_its_figures_with_it(ids: tuple[int, int, int]) -> None:
    alice, _, key = ids
    with write_transaction() as tx:
        count_in_totals(tx, (alice, key, GPT), "ok", (1, 1, 0, 0, 10), MINUTE_ONE)
        with pytest.raises(RuntimeError), Savepoint(tx):
            count_in_totals(tx, (alice, key, GPT), "ok", (50, 50, 0, 0, 500), MINUTE_ONE)
            raise RuntimeError("this write fails")
        with Savepoint(tx):
            count_in_totals(tx, (alice, key, GPT), "ok", (2, 2, 0, 0, 20), MINUTE_TWO)
    assert [row[:7] for row in totals()["accounts"]] == [(alice, 2, 0, 3, 3, 0, 30)]


def test_a_peewee_savepoint_that_rolls_back_takes_its_figures_with_it(
    ids: tuple[int, int, int],
) -> None:
    alice, _, key = ids
    with write_transaction() as tx:  # feature code's atomic() nests as peewee's own savepoint
        count_in_totals(tx, (alice, key, GPT), "ok", (1, 1, 0, 0, 10), MINUTE_ONE)
        with pytest.raises(RuntimeError), database.atomic():
            count_in_totals(tx, (alice, key, GPT), "ok", (50, 50, 0, 0, 500), MINUTE_ONE)
            raise RuntimeError("this write fails")
        with database.atomic() as savepoint:
            count_in_totals(tx, (alice, key, GPT), "ok", (9, 9, 0, 0, 90), MINUTE_ONE)
            savepoint.rollback()  # and begins again
            count_in_totals(tx, (alice, key, GPT), "ok", (2, 2, 0, 0, 20), MINUTE_TWO)
    assert [row[:7] for row in totals()["accounts"]] == [(alice, 2, 0, 3, 3, 0, 30)]
    assert [row[:5] for row in totals()["keys"]] == [(key, alice, 2, 3, 30)]


def test_a_transaction_that_rolls_back_writes_nothing(ids: tuple[int, int, int]) -> None:
    alice, _, key = ids
    with pytest.raises(RuntimeError), write_transaction() as tx:
        count_in_totals(tx, (alice, key, GPT), "ok", (1, 1, 0, 0, 10), MINUTE_ONE)
        raise RuntimeError("the batch failed")
    with write_transaction():
        pass  # the next transaction does not carry the figures over
    assert totals() == {"accounts": [], "keys": [], "rollups": []}


def test_outside_a_transaction_the_figures_are_written_at_once(ids: tuple[int, int, int]) -> None:
    alice, _, _ = ids
    count_in_totals(connection(), (alice, None, GPT), "ok", (4, 4, 0, 0, 40), MINUTE_ONE)
    assert [row[:7] for row in totals()["accounts"]] == [(alice, 1, 0, 4, 4, 0, 40)]


async def batch_with_a_refusal(alice: int, key: int) -> list[object]:
    """Three settlement-like writes in one group commit, the middle one refused after it
    counted (PostgreSQL: on the write thread, run bare, then again with savepoints)."""

    def settles(cost: int, refuse: bool = False) -> Callable[[Tx], int]:
        def write(tx: Tx) -> int:
            count_in_totals(tx, (alice, key, GPT), "ok", (1, 1, 0, 0, cost), MINUTE_ONE)
            if refuse:
                raise InsufficientCredits("refused after it counted")
            return cost

        return write

    start_write_thread()
    batch = WriteBatch()
    try:
        writes = (settles(10), settles(500, refuse=True), settles(20))
        return await asyncio.gather(*map(batch.submit, writes), return_exceptions=True)
    finally:
        stop_db_thread()


def test_a_refusal_in_a_batch_counts_once_the_others_and_never_itself(
    ids: tuple[int, int, int],
) -> None:
    alice, _, key = ids
    outcomes = asyncio.run(batch_with_a_refusal(alice, key))
    assert outcomes[0] == 10 and outcomes[2] == 20
    assert isinstance(outcomes[1], InsufficientCredits)
    assert [row[:7] for row in totals()["accounts"]] == [(alice, 2, 0, 2, 2, 0, 30)]
    assert [row[3:] for row in totals()["rollups"]] == [(2, 0, 2, 30), (2, 0, 2, 30)]
