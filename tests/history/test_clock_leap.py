"""Retention when the wall clock leaps ahead (set forward by mistake, a VM restored with a
wrong clock): a pass at that moment deleted, for good, the usage rows and the per-minute
rollups that the right time keeps, and doctor then named every kept day whose minutes were
gone. Retention now deletes by the time the process counted until the leap has held for
steady_clock.SETTLE_SEC; the ledger is never touched either way."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

from codelace_box.db.core import parse_time, query_all, utcnow
from codelace_box.db.offload import start_db_thread, stop_db_thread
from codelace_box.reports.history import minutes_cutoff, retention_loop, retention_passes
from codelace_box.reports.steady_clock import SETTLE_SEC, SteadyClock
from codelace_box.reports.totals_check import totals_problems
from tests.history.test_minute_pruning import _minutes, _traffic


class _Clocks:
    """A wall clock and a counted (monotonic) one that the test moves."""

    def __init__(self, now: datetime) -> None:
        self.now, self.counted = now, 1000.0

    def later(self, seconds: float, leap: timedelta = timedelta()) -> None:
        self.counted += seconds
        self.now += timedelta(seconds=seconds) + leap


def _count(table: str) -> int:
    return int(query_all(f"SELECT COUNT(*) FROM {table}")[0][0])


async def test_a_clock_leaping_ahead_deletes_nothing_the_right_time_keeps(
    migrated_db: Path,
) -> None:
    now = utcnow()
    _traffic(now)  # the last 20 days and today
    clocks = _Clocks(now)
    clock = SteadyClock(wall=lambda: clocks.now, counted=lambda: clocks.counted)
    start_db_thread()
    try:
        await retention_passes(30, clock.now())  # the right time: the old minutes go
        rows, minutes, ledger = _count("usage_record"), _minutes(), _count("ledger_entry")
        assert min(minutes) >= minutes_cutoff(now)
        clocks.later(3600, leap=timedelta(days=365))  # an hour on, the clock a year ahead
        await retention_passes(30, clock.now())
        right_time = now + timedelta(seconds=3600)  # past midnight, a day's minutes go
        kept = [minute for minute in minutes if minute >= minutes_cutoff(right_time)]
        assert (_count("usage_record"), _minutes()) == (rows, kept)
        assert totals_problems(right_time.date()) == []  # doctor's view, at the right time
        clocks.later(SETTLE_SEC)  # the leap held: it is the time now
        await retention_passes(30, clock.now())
        assert _count("usage_record") == 0 and _minutes() == []
        assert _count("ledger_entry") == ledger
    finally:
        stop_db_thread()


def test_a_clock_going_back_or_drifting_is_followed_at_once() -> None:
    clocks = _Clocks(utcnow())
    clock = SteadyClock(wall=lambda: clocks.now, counted=lambda: clocks.counted)
    clocks.later(60, leap=timedelta(minutes=-30))
    assert clock.now() == clocks.now
    clocks.later(3600, leap=timedelta(minutes=20))  # drift under a leap: followed
    assert clock.now() == clocks.now
    clocks.later(60, leap=timedelta(days=2))
    assert clock.now() == clocks.now - timedelta(days=2)
    clocks.later(60, leap=timedelta(days=-2))  # put right before it settled
    assert clock.now() == clocks.now


async def test_a_box_started_with_its_clock_ahead_deletes_nothing_the_right_time_keeps(
    migrated_db: Path,
) -> None:
    """A box started with its clock already a year ahead (a wrong time at boot) had nothing to
    compare it with: its first retention pass deleted every usage row and per-minute rollup the
    right time keeps. The start clock is compared with the newest time stored (usage rows, the
    ledger): more than an hour ahead of it, it is a leap, held back as one seen while running."""
    now = utcnow()
    _traffic(now)  # the last 20 days and today
    rows, minutes, ledger = _count("usage_record"), _minutes(), _count("ledger_entry")
    start_db_thread()
    try:
        ahead = now + timedelta(days=365)
        loop = asyncio.create_task(retention_loop(30, every_sec=0.05, wall=lambda: ahead))
        await asyncio.sleep(0.5)  # several passes
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        kept = [minute for minute in minutes if minute >= minutes_cutoff(now)]
        assert (_count("usage_record"), _minutes()) == (rows, kept)  # what the right time keeps
        assert totals_problems() == [] and _count("ledger_entry") == ledger
    finally:
        stop_db_thread()


async def test_a_box_started_on_the_right_time_follows_it_at_once(migrated_db: Path) -> None:
    now = utcnow()
    _traffic(now)
    start_db_thread()
    try:
        later = now + timedelta(minutes=50)  # under an hour after the newest row: the time
        loop = asyncio.create_task(retention_loop(1, every_sec=0.05, wall=lambda: later))
        await asyncio.sleep(0.3)
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        oldest = parse_time(query_all("SELECT MIN(created_at) FROM usage_record")[0][0])
        assert oldest >= later - timedelta(days=1)
    finally:
        stop_db_thread()


def test_a_start_clock_ahead_of_the_newest_stored_time_is_followed_once_it_held() -> None:
    newest = utcnow()
    clocks = _Clocks(newest + timedelta(days=3))
    clock = SteadyClock(wall=lambda: clocks.now, counted=lambda: clocks.counted, newest=newest)
    assert clock.now() == newest
    clocks.later(600)
    assert clock.now() == newest + timedelta(seconds=600)
    clocks.later(SETTLE_SEC)  # the clock held: it is the time now
    assert clock.now() == clocks.now
    near = SteadyClock(wall=lambda: clocks.now, counted=lambda: clocks.counted,
                       newest=clocks.now - timedelta(minutes=50))  # fmt: skip
    assert near.now() == clocks.now  # under an hour since the newest row: the clock is right
