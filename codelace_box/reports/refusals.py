"""Requests refused before any upstream call (402, 404, 429): counted, not written as usage rows.

Each server process tallies its refusals in memory (`RefusalTally.add`, no write on the request
path) and writes them into per-hour counters every few seconds (`take()` on the loop,
`write_refusals` on the database thread) and when it stops (`flush()`), so a flood of refusals
costs one small write per interval. The dashboard reads them back with
`refusal_counts`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from codelace_box.db.core import utcnow, write_transaction
from codelace_box.db.failures import is_busy, is_unavailable
from codelace_box.db.observability import bump_refusal, refusal_rows
from codelace_box.db.offload import run_in_db_thread

log = logging.getLogger("codelace_box")

REFUSED = frozenset({402, 404, 429})
Counts = Counter[tuple[str, int, str]]  # (hour, status, code) -> refusals


@dataclass(frozen=True)
class RefusalCount:
    status: int
    code: str
    count: int


class RefusalTally:
    """One process's refusals since its last flush."""

    def __init__(self) -> None:
        self._counts: Counts = Counter()

    def add(self, status: int, code: str) -> None:
        """Count a refusal now (in memory)."""
        self._counts[(utcnow().strftime("%Y-%m-%d %H"), status, code)] += 1

    def flush(self) -> None:
        """Write what was counted since the last flush (nothing when nothing was)."""
        counts = self.take()
        try:
            write_refusals(counts)
        except BaseException:
            self.keep(counts)
            raise

    def flush_at_stop(self) -> None:
        """The last flush of a stopping process: what cannot be written (the database locked
        by another program, or gone) is one log line, not a failed stop."""
        try:
            self.flush()
        except Exception as exc:
            lost = sum(self.take().values())
            log.error(
                "%d refusal%s counted since the last write %s not written (%s): the stop goes on",
                lost, "" if lost == 1 else "s", "is" if lost == 1 else "are", _words(exc),
            )  # fmt: skip

    def take(self) -> Counts:
        """What was counted since the last flush, to write (`write_refusals`); counting
        starts again from nothing."""
        counts, self._counts = self._counts, Counter()
        return counts

    def keep(self, counts: Counts) -> None:
        """Count again what was taken and could not be written (for the next flush)."""
        self._counts.update(counts)


def write_refusals(counts: Counts) -> None:
    """Add refusal counts (`RefusalTally.take`) to the per-hour counters; one transaction."""
    if not counts:
        return
    with write_transaction() as tx:
        for (hour, status, code), count in sorted(counts.items()):
            bump_refusal(tx, hour, status, code, count)


def refusal_counts(since: datetime) -> list[RefusalCount]:
    """Refusals from the hour of `since` on, by status and code, most first."""
    rows = refusal_rows(since.strftime("%Y-%m-%d %H"))
    return [RefusalCount(int(s), str(c), int(n)) for s, c, n in rows]


async def flush_refusals_forever(tally: RefusalTally, every_sec: float) -> None:
    """Every `every_sec` (a serving process's task): the refusals counted, written on the
    database thread (a database host that stops answering holds that thread, not the loop)."""
    while True:
        await asyncio.sleep(every_sec)
        counts = tally.take()
        try:  # shielded: a stop lets the thread write what it took (stop_db_thread waits)
            await asyncio.shield(run_in_db_thread(write_refusals, counts))
        except Exception as exc:  # kept in memory, retried at the next tick
            tally.keep(counts)
            if is_unavailable(exc) or is_busy(exc):  # a failover, a dropped session: routine
                log.warning("writing the refusal counts failed (%s); retried", type(exc).__name__)
            else:
                log.exception("writing the refusal counts failed")


def _words(exc: Exception) -> str:
    """Why a write failed, short (no traceback: a stop's one line)."""
    if is_busy(exc):
        return "the database is locked by another process"
    if is_unavailable(exc):
        return "the database cannot be reached"
    return f"{type(exc).__name__}: {exc}"
