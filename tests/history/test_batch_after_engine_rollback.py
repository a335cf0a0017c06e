"""A write of the group commit that makes SQLite roll the whole transaction back (a full disk:
SQLITE_FULL ends the transaction, not only the statement) fails the whole batch: the writes
before it are gone with the transaction, so none is reported done, no later write commits on
its own, and no usage total is written for any of them (db/batch.py, db/totals.py). On a real
database file whose size is capped with PRAGMA max_page_count."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from codelace_box.accounts.users import create_user
from codelace_box.db.batch import WriteBatch
from codelace_box.db.core import Tx, close_database, open_database, query_all, query_one
from codelace_box.db.migrate import migrate
from codelace_box.gateway.metering import count_in_totals
from tests.pg_cluster import wanted_engine

MINUTE = "2026-03-01 12:00:10.000000"
GPT = "openai/gpt-5.4"

pytestmark = pytest.mark.skipif(
    wanted_engine() == "postgres", reason="SQLite's own roll-back of a full transaction"
)


@pytest.fixture
def user_id(tmp_path: Path) -> Iterator[int]:
    try:
        migrate(open_database(tmp_path / "full.db"))
        user = create_user("a@x.test")
        query_one("CREATE TABLE written (what TEXT NOT NULL, blob BLOB)")
        pages = query_one("PRAGMA page_count")
        assert pages is not None
        query_one(f"PRAGMA max_page_count = {int(pages[0]) + 40}")  # the disk is nearly full
        yield int(user.id)
    finally:
        close_database()


def settle(user_id: int, name: str, cost: int) -> Callable[[Tx], str]:
    """A write like a settlement's: its figures in the totals, and a row of its own."""

    def write(tx: Tx) -> str:
        count_in_totals(tx, (user_id, None, GPT), "ok", (1, 1, 0, 0, cost), MINUTE)
        tx.execute("INSERT INTO written (what) VALUES (?)", (name,))
        return name

    return write


def fill_the_disk(tx: Tx) -> None:
    tx.execute("INSERT INTO written (what, blob) VALUES ('big', zeroblob(4000000))")


async def one_batch(user_id: int) -> list[object]:
    batch = WriteBatch()
    futures = [
        batch.submit(settle(user_id, "before", 10)),
        batch.submit(fill_the_disk),
        batch.submit(settle(user_id, "after", 20)),
    ]
    return await asyncio.gather(*futures, return_exceptions=True)


def test_a_write_that_ends_the_transaction_fails_the_whole_batch(user_id: int) -> None:
    outcomes = asyncio.run(one_batch(user_id))
    assert all(isinstance(outcome, Exception) for outcome in outcomes), outcomes
    assert query_all("SELECT requests, cost_nanos FROM account_usage") == []
    assert query_all("SELECT requests FROM usage_rollup") == []
    assert query_all("SELECT what FROM written") == []  # nothing committed on its own
