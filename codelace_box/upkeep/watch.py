"""The background upkeep of a serve: one worker (whichever holds `<database>.upkeep.lock`; on
PostgreSQL also, of all the boxes on the database, the one that leads, so that each alert is
sent once and not once a box) takes the scheduled backups and watches for what the operator
must hear about: a provider key taken out of rotation, a provider with no working key, an
upstream error rate over `alerts.error_rate` in the last 5 minutes (and its recovery), a failed
scheduled backup, the database's disk full, nearly full or read-only. What went out is kept in
the database (upkeep/kept_alerts.py): the next process to lead neither repeats it nor misses a
key that left the rotation meanwhile. Every TICK_SEC; a failed scheduled backup is tried
again every BACKUP_RETRY_TICKS."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from codelace_box.catalog.providers import has_working_key, list_providers, provider_keys
from codelace_box.config import Config
from codelace_box.db.backup import BackupStopped
from codelace_box.db.core import utcnow
from codelace_box.db.failing import FailureLog
from codelace_box.db.lead import Lead, lead_file
from codelace_box.db.models import Provider, ProviderKey
from codelace_box.db.offload import run_in_db_thread
from codelace_box.reports.traffic import window_stats
from codelace_box.upkeep.alerts import Alerter
from codelace_box.upkeep.backups import record_failure, scheduled_backup_if_due
from codelace_box.upkeep.kept_alerts import KeptAlerts

log = logging.getLogger("codelace_box.upkeep")
TICK_ENV = "CODELACE_UPKEEP_TICK_SEC"  # tests shorten the tick
TICK_SEC = 30.0
ERROR_WINDOW = timedelta(minutes=5)
UPKEEP_ROLE = "upkeep"  # the lead among boxes on one PostgreSQL database
MIN_REQUESTS = 10  # fewer requests in the window say nothing about a rate
FULL_BYTES = 2**20  # less free on the database's disk: full (SQLite grows by pages)
LOW_BYTES = 64 * 2**20  # less free (or under 1% of a smaller disk): low
BACKUP_RETRY_TICKS = 10  # after a failed scheduled backup, ticks before the next try
BACKUP_STOP_WAIT_SEC = 2.0  # serve stopping: the wait for the backup's thread to say how it ended


class Upkeep:
    """The state of one process's upkeep (it acts only while it leads)."""

    def __init__(self, config: Config, tick_sec: float = TICK_SEC) -> None:
        self.config = config
        self.tick_sec = tick_sec
        self.alerter = Alerter(config.alerts.webhook_url, retry_sec=tick_sec)
        self.backup_failure = ""  # why the last backup failed (its digits as #); '' once one works
        self.backup_retry_at = 0.0  # monotonic: no backup tried before (after a failure)
        self.kept = KeptAlerts(self.alerter)  # the alerts' state, from the database
        self.lead = Lead(lead_file(config.database, "upkeep"), UPKEEP_ROLE)
        self.disk_problem = ""  # what the last look at the database's disk found
        self.part_failures: dict[str, FailureLog] = {}  # each part's failures, logged apart

    async def tick(self, now: datetime) -> None:
        """Each part in turn, while this process leads. A part that raises does not keep the
        others from their turn (a failing key watch skipped the scheduled backup), and each
        part's failures are logged on their own (once while they last, and their end)."""
        if not await self.lead.held():
            return
        parts: dict[str, Callable[[], Awaitable[None]]] = {
            "reading the open alerts": partial(self.kept.look, now),
            "disk watch": self.watch_disk,
            "key watch": self.watch_keys,
            "scheduled backup": partial(self.backup, now),
            "error-rate watch": partial(self.watch_errors, now),
        }
        for name, part in parts.items():
            failures = self.part_failures.get(name)
            if failures is None:
                failures = self.part_failures[name] = FailureLog(log, f"the upkeep's {name}")
            try:
                await part()
            except Exception as exc:
                failures.failed(exc)
            else:
                failures.worked()

    async def backup(self, now: datetime) -> None:
        if time.monotonic() < self.backup_retry_at:
            return
        stop = threading.Event()
        job = asyncio.ensure_future(
            asyncio.to_thread(scheduled_backup_if_due, self.config, now, stop)
        )
        try:  # a folder it cannot read is a failed backup too, not a failed tick
            path = await asyncio.shield(job)
            if path is None:
                return
        except asyncio.CancelledError:  # serve stops: so does the copy's thread, at once
            stop.set()
            await _log_outcome_at_stop(job)
            raise
        except Exception as exc:
            await self.backup_failed(exc, now)
            return
        if self.backup_failure:
            log.warning("the scheduled backups work again")
        self.backup_failure, self.backup_retry_at = "", 0.0
        log.info("scheduled backup written to %s", path)

    async def backup_failed(self, exc: Exception, now: datetime) -> None:
        """Log (once while the reason stays the same), keep for doctor and alert a failed
        backup, and wait BACKUP_RETRY_TICKS before the next try (a copy cut off midway is a
        whole copy)."""
        reason = getattr(exc, "message", None) or _os_reason(exc) or type(exc).__name__
        await asyncio.to_thread(record_failure, self.config.database.path, now, reason)
        wait = BACKUP_RETRY_TICKS * self.tick_sec
        self.backup_retry_at = time.monotonic() + wait
        same = re.sub(r"\d+", "#", reason)  # the copy's name and sizes change at each try
        if same != self.backup_failure:
            log.error("the scheduled backup failed: %s (tried again every %g s)", reason, wait)
        self.backup_failure = same
        await self.kept.alert("backup", "", f"the scheduled backup failed: {reason}")

    async def watch_disk(self) -> None:
        """A full (or read-only) database disk fails every request before any usage is
        written, so the error rate never sees it: alert on the disk itself (SQLite)."""
        if self.config.database.is_postgres:
            return
        problem = disk_problem(Path(self.config.database.path).parent)
        if problem and problem != self.disk_problem:
            log.error("%s", problem)
        self.disk_problem = problem
        if problem:
            await self.kept.alert("disk", "", problem)

    async def watch_keys(self) -> None:
        """Alert each key out of rotation once (its alert stays open while it is out, and
        RATE_LIMIT_SEC after: a key back and out again meanwhile is not alerted twice), and
        every provider with no working key (again every RATE_LIMIT_SEC while it lasts)."""
        failing: set[str] = set()
        for provider, keys in await run_in_db_thread(_providers_and_keys):
            for key in keys:
                if key.enabled and key.failing:
                    failing.add(str(key.id))
                    if not self.kept.is_open("key", str(key.id)):
                        await self.kept.alert("key", str(key.id), _key_alert(provider, key))
            if provider.enabled and not has_working_key(keys):
                await self.kept.alert(
                    "provider", provider.name,
                    f"provider {provider.name} has no working key: its models answer 503",
                )  # fmt: skip
        over = [s for s in self.kept.subjects("key") if s not in failing]
        await self.kept.close([("key", s) for s in over if self.kept.expired("key", s)])

    async def watch_errors(self, now: datetime) -> None:
        """Alert an error rate over alerts.error_rate (of MIN_REQUESTS or more), and say once
        when it recovered: back to it or under, however few the requests (a process that takes
        the upkeep over says it too: the open alert is in the database). Fewer requests raise
        no alert, but neither do they end one while too many of them still fail (9 of 9
        failing was said to be a recovery, and a few more requests alerted again), nor does
        no request at all (clients that gave up: "0 of the last 0 requests" recovered)."""
        stats = await run_in_db_thread(window_stats, now - ERROR_WINDOW)
        rate = stats.errors / stats.requests if stats.requests else 0.0
        limit = self.config.alerts.error_rate
        said = (
            f"{stats.errors} of the last {stats.requests} requests ({rate:.0%}) failed in 5 "
            f"minutes (alerts.error_rate {limit:g})"
        )
        if stats.requests and rate <= limit:
            await self.kept.resolve("error_rate", "", f"the error rate recovered: {said}")
        elif stats.requests >= MIN_REQUESTS:
            await self.kept.alert("error_rate", "", said)


async def _log_outcome_at_stop(job: asyncio.Future[Path | None]) -> None:
    """What the backup's thread, told to stop as serve stops, ended with, in the log: a copy
    stopped, one it had finished, one that failed; nothing when no backup was due (the stop
    came while it looked at backup.dir)."""
    await asyncio.wait([job], timeout=BACKUP_STOP_WAIT_SEC)
    if not job.done():
        log.info("serve is stopping: the scheduled backup was told to stop and has not ended "
                 "yet (its thread may wait on backup.dir)")  # fmt: skip
        return
    if job.cancelled():
        return
    error = job.exception()
    if isinstance(error, BackupStopped):
        log.info("the scheduled backup was stopped: serve is stopping")
    elif isinstance(error, Exception):
        reason = getattr(error, "message", None) or _os_reason(error) or type(error).__name__
        log.error("the scheduled backup failed: %s", reason)
    elif (path := job.result()) is not None:
        log.info("scheduled backup written to %s", path)


def _key_alert(provider: Provider, key: ProviderKey) -> str:
    """What the operator hears of a key that left the rotation (a parked one: what to do)."""
    named = f"provider key {key.id} ({key.key_hint}) of {provider.name}"
    if key.parked:
        return (
            f"{named} was parked, out of rotation: its upstream refuses it on calls though its "
            f"probe works, so no probe brings it back; once fixed: providers key-enable "
            f"{provider.name} {key.id}"
        )
    return f"{named} was taken out of rotation: its upstream refused it"


def _os_reason(exc: Exception) -> str:
    """An OSError in words, with its file ('Permission denied: /var/backups/...')."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return ""


def disk_problem(folder: Path) -> str:
    """What is wrong with the disk of the database's folder: full (under FULL_BYTES free),
    low (under LOW_BYTES, or 1% of it on a smaller disk), read-only; '' when nothing."""
    try:
        disk = os.statvfs(folder)
    except OSError:
        return ""
    if disk.f_flag & os.ST_RDONLY:
        return f"the database's disk is read-only ({folder}): requests fail with 503"
    free, size = disk.f_bavail * disk.f_frsize, disk.f_blocks * disk.f_frsize
    if free < FULL_BYTES:
        return f"the database's disk is full ({folder}): requests fail with 503 until there is room"
    if free < min(LOW_BYTES, size // 100):
        return (
            f"the database's disk has {free // 2**20} MiB free ({folder}): requests fail with "
            "503 once it is full"
        )
    return ""


def _providers_and_keys() -> list[tuple[Provider, list[ProviderKey]]]:
    """Every provider with its keys (read on the database thread, like every timed read)."""
    return [(provider, provider_keys(provider.id)) for provider in list_providers()]


async def upkeep_forever(config: Config, tick_sec: float) -> None:
    """Tick until cancelled; a failed tick is logged and the next one tries again."""
    upkeep = Upkeep(config, tick_sec)
    failures = FailureLog(log, "the background upkeep")
    try:
        while True:
            try:
                await upkeep.tick(utcnow())
            except Exception as exc:
                failures.failed(exc)
            else:
                failures.worked()
            await asyncio.sleep(tick_sec)
    finally:
        upkeep.lead.release()


async def start_upkeep(app: Any) -> None:
    """Per worker (a startup hook): start the upkeep task."""
    tick = float(os.environ.get(TICK_ENV) or TICK_SEC)
    app.ctx.upkeep = asyncio.get_running_loop().create_task(upkeep_forever(app.ctx.config, tick))


async def stop_upkeep(app: Any) -> None:
    """Per worker (a shutdown hook): stop it."""
    task: asyncio.Task[None] | None = getattr(app.ctx, "upkeep", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
