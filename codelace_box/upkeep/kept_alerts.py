"""The upkeep's alerts with their state kept in the database (open_alert, migration 24), so
that whichever process holds the upkeep next (a restarted serve, another worker, another box
on PostgreSQL) knows what went out: it neither sends an alert again before RATE_LIMIT_SEC nor
forgets to say an error rate recovered. A row per alert kind and subject, with when it was
sent: read once a tick (`look`), then each alert and recovery goes through the Alerter as the
row says, and what changed is written back. A row of a kind that is sent again while its
problem lasts (a provider with no working key, a failed backup, a full disk) says nothing
once RATE_LIMIT_SEC old: it is removed. A change the database does not take (its disk full,
the very thing alerted) is kept in the process and tried again at each tick (not only with
the next change); meanwhile the process goes by it. A read the database fails (its disk gone
bad) leaves the tick with what the process knows (its own alerts are each sent once), so the
disk trouble that made it fail is still alerted. Without a webhook (alerts off) nothing is read:
the rows are removed, once a process (the webhook set again later, an alert long over is not
followed by a 'recovered' notice, nor held back)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

from codelace_box.db.core import db_time, parse_time
from codelace_box.db.failing import FailureLog
from codelace_box.db.observability import clear_open_alerts, keep_open_alerts, open_alerts
from codelace_box.db.offload import run_in_db_thread
from codelace_box.upkeep.alerts import Alerter

log = logging.getLogger("codelace_box.upkeep")
REPEATED = frozenset({"provider", "backup", "disk"})  # sent again while the problem lasts
Alert = tuple[str, str]  # (kind, subject)
STOP_WAIT_SEC = 2.0  # serve stopping: the wait for an alert being sent, and its row


class KeptAlerts:
    """One upkeep's view of the open alerts, as read at its tick's start."""

    def __init__(self, alerter: Alerter) -> None:
        self.alerter = alerter
        self.rows: dict[Alert, str] = {}  # open alerts -> sent_at (stored text)
        self.unwritten: dict[Alert, str | None] = {}  # changes the database has yet to take
        self.failures = FailureLog(log, "keeping the open alerts in the database")
        self.read_failures = FailureLog(log, "reading the open alerts from the database")
        self.now = datetime.min
        self.cleared = False  # alerts off: the rows were removed (by this process)

    async def look(self, now: datetime) -> None:
        """Read the open alerts (at the start of a tick that leads), and remove those of the
        REPEATED kinds that are old enough to be sent again anyway. A failed read keeps what
        this process knew (its own alerts): the tick goes on, the disk watched all the same."""
        self.now = now
        if not self.alerter.webhook_url:
            await self._clear()
            return
        try:
            rows = await run_in_db_thread(open_alerts)
        except Exception as exc:  # the database's disk gone bad, the database away
            self.read_failures.failed(exc)
        else:
            self.read_failures.worked()
            self.rows = {(kind, subject): sent_at for kind, subject, sent_at in rows}
        for alert, sent_at in self.unwritten.items():
            self._set(alert, sent_at)
        expired = [a for a in self.rows if a[0] in REPEATED and self.expired(*a)]
        if expired or self.unwritten:  # what the database refused is tried again at each tick
            await self._write(dict.fromkeys(expired))

    def is_open(self, kind: str, subject: str) -> bool:
        return (kind, subject) in self.rows

    def expired(self, kind: str, subject: str) -> bool:
        """An open alert sent RATE_LIMIT_SEC or more ago (False when it is not open)."""
        age = self._age(kind, subject)
        return age is not None and age >= self.alerter.rate_limit_sec

    def subjects(self, kind: str) -> list[str]:
        return [subject for known, subject in self.rows if known == kind]

    async def alert(self, kind: str, subject: str, text: str) -> bool:
        """Alerter.alert, as the database says it went out; True when taken care of."""
        self.alerter.adopt(kind, subject, self._age(kind, subject))
        return await _ended_at_stop(self._alert(kind, subject, text))

    async def _alert(self, kind: str, subject: str, text: str) -> bool:
        before = self.alerter.sent.get((kind, subject))
        said = await self.alerter.alert(kind, subject, text)
        if said and self.alerter.sent.get((kind, subject)) != before:  # sent now
            await self._write({(kind, subject): db_time(self.now)})
        return said

    async def resolve(self, kind: str, subject: str, text: str) -> bool:
        """Alerter.resolve of an alert the database says is open; then it is not."""
        self.alerter.adopt(kind, subject, self._age(kind, subject))
        return await _ended_at_stop(self._resolve(kind, subject, text))

    async def _resolve(self, kind: str, subject: str, text: str) -> bool:
        said = await self.alerter.resolve(kind, subject, text)
        if said and self.is_open(kind, subject):
            await self.close([(kind, subject)])
        return said

    async def close(self, alerts: list[Alert]) -> None:
        """Remove these alerts from the open ones."""
        if alerts:
            await self._write(dict.fromkeys(alerts))

    async def _write(self, changes: dict[Alert, str | None]) -> None:
        """Take `changes` (sent_at, or None: closed) here at once, and in the database with
        those it has yet to take, or keep them all for the next try."""
        for alert, sent_at in changes.items():
            self._set(alert, sent_at)
        pending = {**self.unwritten, **changes}
        try:
            await run_in_db_thread(keep_open_alerts, [(*a, s) for a, s in pending.items()])
        except Exception as exc:  # its disk full, read-only, the database away: later
            self.unwritten = pending
            self.failures.failed(exc)
        else:
            self.unwritten = {}
            self.failures.worked()

    async def _clear(self) -> None:
        """Alerts off: remove every open alert, once (tried again at the next tick)."""
        if self.cleared:
            return
        try:
            await run_in_db_thread(clear_open_alerts)
        except Exception as exc:  # its disk full, read-only, the database away: later
            self.failures.failed(exc)
        else:
            self.cleared = True
            self.failures.worked()

    def _set(self, alert: Alert, sent_at: str | None) -> None:
        if sent_at is None:
            self.rows.pop(alert, None)
            self.alerter.sent.pop(alert, None)
        else:
            self.rows[alert] = sent_at

    def _age(self, kind: str, subject: str) -> float | None:
        sent_at = self.rows.get((kind, subject))
        return None if sent_at is None else (self.now - parse_time(sent_at)).total_seconds()


async def _ended_at_stop(send: Coroutine[Any, Any, bool]) -> bool:
    """`send` (an alert or its recovery, then its row), let end when serve stops meanwhile
    (the upkeep cancelled): the webhook may have the message already, and a send cut off
    before its answer kept no row, so the next to lead sent it again. Waited for up to
    STOP_WAIT_SEC (a webhook that does not answer: the next lead sends it, at least once)."""
    job = asyncio.ensure_future(send)
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        log.info("serve is stopping: the alert being sent is waited for (up to %g s), so that "
                 "the next to watch knows it went out", STOP_WAIT_SEC)  # fmt: skip
        await asyncio.wait([job], timeout=STOP_WAIT_SEC)
        job.cancel()
        raise
