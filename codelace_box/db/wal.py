"""SQLite's WAL checkpoints in a server process: on a thread of their own, not the event loop.

A checkpoint copies the pages written to the WAL back into the database file and syncs both
files. SQLite runs one by itself in the commit that takes the WAL past 1000 pages; in `serve`
that commit is the request path's, on the event loop (every ~80 requests), and every request
of the worker waits for its fsyncs (3-40 ms here on a busy machine, 200 ms seen). So the
loop's connection checkpoints only as a backstop (the WAL past LOOP_CHECKPOINT_PAGES) and a
thread of its own (its own connection; the database thread's reads do not queue behind an
fsync) checkpoints every CHECKPOINT_EVERY_SEC, PASSIVE: it never waits for the loop's writes
nor blocks them.

The WAL starts over at the first write after a checkpoint that caught up with it (the writer
then syncs the WAL's new header, one small fsync SQLite requires). Under a steady stream of
writes the thread seldom catches up (a commit lands during its fsyncs) and the loop's backstop
does it, with little left to copy or to sync: the last quarter second's writes. Measured at
200 requests/s on 10M rows: 3 fsyncs on the loop per 20,000 pages (~5 s), 0.3-4 ms each,
against 3 per 1000 pages (~0.4 s) before, up to 20 ms each. PostgreSQL: nothing to do here.
"""

from __future__ import annotations

import asyncio
import logging
import time

from codelace_box.db.core import SQLITE, connection, engine
from codelace_box.db.failures import traceback_of
from codelace_box.db.offload import DbThread

log = logging.getLogger("codelace_box.db")
LOOP_CHECKPOINT_PAGES = 20_000  # ~80 MB of WAL
CHECKPOINT_EVERY_SEC = 0.25
CATCH_UP_TRIES = 3  # passes in a row while writes kept landing during the last one


def defer_checkpoints() -> None:
    """The calling thread's connection (the event loop's) checkpoints only past
    LOOP_CHECKPOINT_PAGES pages of WAL, not at SQLite's 1000."""
    if engine() == SQLITE:
        connection().execute(f"PRAGMA wal_autocheckpoint = {LOOP_CHECKPOINT_PAGES}").fetchall()


def checkpoint() -> tuple[int, int]:
    """PASSIVE checkpoints on the calling thread's connection (as much of the WAL as no reader
    still needs), again while writes landed meanwhile, up to CATCH_UP_TRIES: (pages in the
    WAL, of them copied back) after the last; (0, 0) on PostgreSQL."""
    pages = copied = 0
    for _ in range(CATCH_UP_TRIES if engine() == SQLITE else 0):
        row = connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        pages, copied = int(row[1]), int(row[2])
        if copied >= pages:
            break
    return pages, copied


async def checkpoint_loop(every_sec: float = CHECKPOINT_EVERY_SEC) -> None:
    """Checkpoint on a thread of its own every `every_sec` until cancelled (then the thread
    finishes its pass, closes its connection and ends). A failure is logged once, not at
    every pass while it lasts (out of file descriptors, say: four lines a second), and its
    end is one line more."""
    thread = DbThread("codelace-wal")
    failing_since: float | None = None
    try:
        while True:
            await asyncio.sleep(every_sec)
            try:
                await thread.run(checkpoint)
            except Exception as exc:  # the loop's backstop checkpoints meanwhile
                if failing_since is None:
                    failing_since = time.monotonic()
                    log.error("the WAL checkpoint failed: %s (retrying every %g s, said once)",
                              exc, every_sec, exc_info=traceback_of(exc))  # fmt: skip
                continue
            if failing_since is not None:
                lasted, failing_since = time.monotonic() - failing_since, None
                log.warning("the WAL checkpoint works again, after %.0f s of failures", lasted)
    finally:
        thread.stop()
