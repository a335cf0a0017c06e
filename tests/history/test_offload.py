"""db/offload.py: database work sent to the database thread leaves the event loop free."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from codelace_box.db.core import close_database, open_database, query_one
from codelace_box.db.offload import (
    DbThread,
    run_in_db_thread,
    start_db_thread,
    start_write_thread,
    stop_db_thread,
    write_thread,
)

# A query that keeps SQLite busy for a while (hundreds of ms to seconds, machine-dependent).
SLOW_SQL = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) "
    "SELECT COUNT(*), SUM(i % 7) FROM n"
)


async def _ticks_while(work: asyncio.Future[object]) -> list[float]:
    """The gaps between 10 ms ticks of the loop while `work` runs."""
    gaps, last = [], time.monotonic()
    while not work.done():
        await asyncio.sleep(0.01)
        now = time.monotonic()
        gaps.append(now - last)
        last = now
    return gaps


async def test_a_long_query_on_the_db_thread_leaves_the_loop_free(migrated_db: Path) -> None:
    start_db_thread()
    try:
        started = time.monotonic()
        work = asyncio.ensure_future(run_in_db_thread(query_one, SLOW_SQL))
        gaps = await _ticks_while(work)
        took = time.monotonic() - started
        assert (await work) == (3000000, sum(i % 7 for i in range(1, 3000001)))
    finally:
        stop_db_thread()
    assert took > 0.1, "the query was too quick to show anything"
    assert len(gaps) >= 5  # the loop kept turning while the query ran
    assert max(gaps) < took / 2 + 0.05  # never blocked for most of the query


async def test_the_same_query_on_the_loop_blocks_it(migrated_db: Path) -> None:
    """The contrast that shows the first test measures something."""

    async def on_loop() -> object:
        return query_one(SLOW_SQL)

    work = asyncio.ensure_future(on_loop())
    gaps = await _ticks_while(work)
    await work
    assert len(gaps) <= 1  # the loop did not turn until the query was done


async def test_the_thread_has_its_own_connection_and_closes_it(migrated_db: Path) -> None:
    from codelace_box.db.core import database

    thread = DbThread()
    mine = database.connection()
    theirs = await thread.run(database.connection)
    name = await thread.run(lambda: threading.current_thread().name)
    assert theirs is not mine and name.startswith("codelace-db")
    assert await thread.run(database.is_closed) is False
    thread.stop()
    assert not thread.running and database.connection() is mine  # ours stays open
    with pytest.raises(RuntimeError):
        await thread.run(query_one, "SELECT 1")


async def test_an_exception_on_the_thread_is_raised_to_the_caller(migrated_db: Path) -> None:
    start_db_thread()
    try:
        with pytest.raises(Exception, match=r"no such table|does not exist"):
            await run_in_db_thread(query_one, "SELECT * FROM no_such_table")
    finally:
        stop_db_thread()
    with pytest.raises(RuntimeError, match="not started"):
        await run_in_db_thread(query_one, "SELECT 1")


def test_sqlite_keeps_its_writes_on_the_loop(tmp_path: Path) -> None:
    """No write thread on SQLite (its writes are local calls; PostgreSQL's: test_postgres.py)."""
    open_database(tmp_path / "box.db")
    try:
        assert start_write_thread() is None and write_thread() is None
    finally:
        close_database()
