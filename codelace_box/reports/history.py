"""The usage history as the operator takes it away or lets it go: `usage export` (CSV or JSON
lines, streamed a page at a time) and retention (old usage rows deleted in small batches).

Retention deletes usage rows only: the running totals and rollups (kept in the settlement
transaction) and the ledger never change, so every balance and total stays right. The
per-minute rollups (up to 1,440 rows a model a day) are pruned too, always, whatever
usage.retention_days says: their readers (the dashboard's last hour and day, the alerts'
last minutes) look back a day at most; MINUTES_KEPT_DAYS whole UTC days of them stay (the
per-day rollups keep every day). Both delete by steady_clock.SteadyClock's time: a wall clock
that leaps ahead is not followed at once.
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import TextIO

from codelace_box.db.containers import delete_expired_containers
from codelace_box.db.core import EARLIEST, db_time, parse_time, utcnow
from codelace_box.db.failing import FailureLog
from codelace_box.db.history import (
    EXPORT_COLUMNS,
    delete_minute_rollups_batch,
    delete_usage_batch,
    newest_stored_time,
    usage_pages,
)
from codelace_box.db.lead import Lead
from codelace_box.db.offload import run_in_db_thread
from codelace_box.reports.steady_clock import SteadyClock

log = logging.getLogger("codelace_box.reports")
RETENTION_BATCH = 500  # rows per delete: each a short write transaction
RETENTION_PAUSE_SEC = 0.05  # between batches: the request path takes the write lock meanwhile
RETENTION_EVERY_SEC = 3600.0
LEAD_ASK_SEC = 30.0  # a process that does not lead the retention asks again this often
# what a spreadsheet reads as a formula (OWASP), and a NUL (OWASP ASVS 5.0, 1.2.10)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\x00")
MINUTES_KEPT_DAYS = 7  # per-minute rollups kept: this many whole UTC days before today


def export_records(
    since: datetime | None, user_id: int | None, until: datetime | None = None
) -> Iterator[dict[str, object]]:
    """Every usage row from `since` up to `until` (excluded), optionally one user's, oldest
    first, as a record."""
    start = db_time(since) if since else EARLIEST
    end = db_time(until) if until else None
    for page in usage_pages(start, user_id, until=end):
        for row in page:
            record = dict(zip(EXPORT_COLUMNS, row, strict=True))
            moment = parse_time(record["created_at"])  # one form: a whole second has its digits
            record["created_at"] = moment.isoformat(timespec="microseconds") + "Z"
            record["stream"], record["estimated"] = bool(row[10]), bool(row[11])
            yield record


def write_export(records: Iterator[dict[str, object]], out: TextIO, fmt: str) -> int:
    """Write the records as CSV (a header line first) or JSON lines; how many."""
    count = 0
    # CRLF (RFC 4180): the writer quotes a value holding any character of its line ending, so
    # with LF alone a lone CR went out bare and a reader split the record there
    writer = csv.DictWriter(out, fieldnames=EXPORT_COLUMNS, lineterminator="\r\n")
    if fmt == "csv":
        writer.writeheader()
    for record in records:
        if fmt == "csv":
            writer.writerow({name: spreadsheet_cell(value) for name, value in record.items()})
        else:
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
        count += 1
    return count


def spreadsheet_cell(value: object) -> object:
    """A CSV value a spreadsheet shows as it is: text starting with = + - @, a tab, a CR or a
    NUL (an email may start with = + -, an upstream's error code with anything) gets a single
    quote before it, OWASP's advice against formula injection; numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def delete_old_usage_rows(
    days: int, now: datetime | None = None, batch: int = RETENTION_BATCH
) -> int:
    """Delete the usage rows older than `days` days, batch by batch (synchronous: the CLI and
    tests; `serve` runs `retention_pass`)."""
    cutoff = db_time((now or utcnow()) - timedelta(days=days))
    total = 0
    while (done := delete_usage_batch(cutoff, batch)) > 0:
        total += done
    return total


async def retention_pass(
    days: int, batch: int = RETENTION_BATCH, now: datetime | None = None
) -> int:
    """One pass of retention from the event loop: each batch on the database thread, a pause
    between batches; how many rows went."""
    cutoff = db_time((now or utcnow()) - timedelta(days=days))
    total = 0
    while (done := await run_in_db_thread(delete_usage_batch, cutoff, batch)) > 0:
        total += done
        await asyncio.sleep(RETENTION_PAUSE_SEC)
    return total


def minutes_cutoff(now: datetime | None = None, days: int = MINUTES_KEPT_DAYS) -> str:
    """The first minute kept ('YYYY-MM-DD 00:00'): midnight (UTC) `days` days before today's,
    so every day kept has all its minutes (doctor compares them with the day's rollup)."""
    first_day = (now or utcnow()).date() - timedelta(days=days)
    return first_day.isoformat() + " 00:00"


def prune_minute_rollups(now: datetime | None = None, batch: int = RETENTION_BATCH) -> int:
    """Delete the per-minute rollups before `minutes_cutoff`, batch by batch (synchronous: the
    CLI and tests; `serve` runs `minutes_pass`)."""
    cutoff = minutes_cutoff(now)
    total = 0
    while (done := delete_minute_rollups_batch(cutoff, batch)) > 0:
        total += done
    return total


async def minutes_pass(batch: int = RETENTION_BATCH, now: datetime | None = None) -> int:
    """One pass of pruning the per-minute rollups from the event loop, as `retention_pass`."""
    cutoff = minutes_cutoff(now)
    total = 0
    while (done := await run_in_db_thread(delete_minute_rollups_batch, cutoff, batch)) > 0:
        total += done
        await asyncio.sleep(RETENTION_PAUSE_SEC)
    return total


async def containers_pass(now: datetime, batch: int = RETENTION_BATCH) -> int:
    """One pass deleting the Anthropic containers expired before `now` (db/containers.py), as
    `retention_pass`: whatever `days` says, an expired container is no one's to open."""
    total = 0
    while (done := await run_in_db_thread(delete_expired_containers, now, batch)) > 0:
        total += done
        await asyncio.sleep(RETENTION_PAUSE_SEC)
    return total


async def retention_loop(
    days: int,
    every_sec: float = RETENTION_EVERY_SEC,
    lead: Lead | None = None,
    ask_sec: float = LEAD_ASK_SEC,
    clock: SteadyClock | None = None,
    wall: Callable[[], datetime] = utcnow,
) -> None:
    """Run `retention_pass` (when `days` > 0) and `minutes_pass` now and then every
    `every_sec` until cancelled; with `lead`, only while this process holds it (the workers
    of a serve, the boxes on a database: one deletes, not each), asked every `ask_sec`
    meanwhile (a lead that ended is taken over), and let go when cancelled. The time it
    deletes by is `clock`'s (steady_clock.py: a wall clock that leaps ahead, or starts far
    ahead of the newest time stored when this process first leads, is not followed at once),
    else the `wall` clock's."""
    failures = FailureLog(log, "the retention pass")
    try:
        while True:
            wait = every_sec
            try:
                if lead is None or await lead.held():
                    if clock is None:  # at its first lead (a failed read: at the next pass)
                        newest = await run_in_db_thread(newest_stored_time)
                        clock = SteadyClock(wall, newest=newest)
                    await retention_passes(days, clock.now())
                else:
                    wait = ask_sec
            except Exception as exc:
                failures.failed(exc)
            else:
                failures.worked()
            await asyncio.sleep(wait)
    finally:
        if lead is not None:
            lead.release()


async def retention_passes(days: int, now: datetime) -> None:
    """Usage retention (`days` > 0), the per-minute rollups' pruning and the expired
    containers' deletion, as of `now`."""
    deleted = await retention_pass(days, now=now) if days > 0 else 0
    if deleted:
        log.info("retention: deleted %d usage rows older than %d days", deleted, days)
    pruned = await minutes_pass(now=now)
    if pruned:
        log.info("retention: deleted %d per-minute rollups", pruned)
    expired = await containers_pass(now)
    if expired:
        log.info("retention: deleted %d expired Anthropic containers", expired)
