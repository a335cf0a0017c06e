"""db/wal.py: in `serve` the WAL is checkpointed on a thread of its own, the event loop's
connection only past its backstop (SQLite; on PostgreSQL it all does nothing)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from codelace_box.db.core import POSTGRES, engine, query_one, write_transaction
from codelace_box.db.wal import (
    LOOP_CHECKPOINT_PAGES,
    checkpoint,
    checkpoint_loop,
    defer_checkpoints,
)

pytestmark = pytest.mark.usefixtures("migrated_db")


def _write_pages(rows: int = 200) -> None:
    """Enough writes to put a few dozen pages in the WAL."""
    with write_transaction() as tx:
        tx.execute("CREATE TABLE IF NOT EXISTS filler (id INTEGER PRIMARY KEY, body TEXT)")
        for _ in range(rows):
            tx.execute("INSERT INTO filler (body) VALUES (?)", ("x" * 500,))


def _wal_state() -> tuple[int, int]:
    """(pages in the WAL, of them copied back), as a checkpoint that copies nothing (NOOP,
    SQLite 3.51 on) reports them."""
    row = query_one("PRAGMA wal_checkpoint(NOOP)")
    assert row is not None
    return int(row[1]), int(row[2])


def test_the_loops_connection_checkpoints_only_past_the_backstop() -> None:
    if engine() == POSTGRES:
        defer_checkpoints()  # nothing to defer: it must simply not fail
        return
    assert query_one("PRAGMA wal_autocheckpoint") == (1000,)  # SQLite's own
    defer_checkpoints()
    assert query_one("PRAGMA wal_autocheckpoint") == (LOOP_CHECKPOINT_PAGES,)
    _write_pages()
    pages, copied = _wal_state()
    assert pages > 20 and copied == 0  # the commits did not checkpoint


def test_a_checkpoint_copies_the_wal_back_and_the_next_write_starts_it_over() -> None:
    if engine() == POSTGRES:
        assert checkpoint() == (0, 0)
        return
    defer_checkpoints()
    _write_pages()
    pages, copied = checkpoint()
    assert pages > 20 and copied == pages
    _write_pages(1)
    assert _wal_state()[0] < pages  # the WAL began again from its start


async def test_the_loop_checkpoints_on_its_own_thread_until_cancelled() -> None:
    if engine() == POSTGRES:
        return
    defer_checkpoints()
    _write_pages()
    task = asyncio.ensure_future(checkpoint_loop(every_sec=0.01))
    for _ in range(500):
        await asyncio.sleep(0.01)
        pages, copied = _wal_state()
        if copied == pages:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    names = [t.name for t in threading.enumerate()]
    assert pages > 20 and copied == pages  # copied back by the loop's thread, not this one
    assert not any(name.startswith("codelace-wal") for name in names)  # and it ended
