"""The per-minute rollups pruned (reports/history.py): the minutes of the days before the last
MINUTES_KEPT_DAYS go, in batches, also with usage retention off; the day rollups, the
dashboard's last hour and day and the usage report are unchanged; doctor compares the kept
minutes with their days' rollups and stays clean after pruning, even half-way through."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path

from codelace_box.accounts.users import create_user
from codelace_box.billing.ledger import append_entry_in
from codelace_box.db.core import db_time, query_all, utcnow, write_transaction
from codelace_box.db.offload import start_db_thread, stop_db_thread
from codelace_box.reports.history import (
    MINUTES_KEPT_DAYS,
    minutes_cutoff,
    prune_minute_rollups,
    retention_loop,
)
from codelace_box.reports.spend_days import daily_spend_report
from codelace_box.reports.totals_check import totals_problems
from codelace_box.reports.traffic import requests_per_minute, window_stats
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, BoxFactory
from tests.history.test_history_units import add_row
from tests.history.test_report_agreement import HELLO
from tests.pg_cluster import write_config_db

MODELS = ("openai/gpt-5.4", "openai/gpt-5.4-mini")


def _traffic(now: datetime) -> None:
    """Two accounts, two models, a few minutes a day over the last 20 days and today."""
    users = [create_user(f"m{i}@x.test").id for i in range(2)]
    n = 0
    for back in range(20, -1, -1):
        day = datetime.combine(now.date() - timedelta(days=back), datetime.min.time())
        for minute in (0, 61, 700, 1439):
            when = min(day + timedelta(minutes=minute, seconds=n % 60), now)
            add_row(users[n % 2], when, n, model=MODELS[n % 3 % 2])
            with write_transaction() as tx:  # what the settlement debits (add_row's cost)
                key = f"usage:req-{users[n % 2]}-{n}"  # the settlement's key of add_row's row
                append_entry_in(tx, users[n % 2], -(1000 + n), "usage", "u", key, db_time(when))
            n += 1


def _minutes() -> list[str]:
    rows = query_all("SELECT bucket FROM usage_rollup WHERE period = 'minute' ORDER BY bucket")
    return [str(r[0]) for r in rows]


def _days() -> list[tuple[object, ...]]:
    return query_all("SELECT * FROM usage_rollup WHERE period = 'day' ORDER BY bucket, model")


def test_old_minutes_go_and_the_readers_see_the_same(migrated_db: Path) -> None:
    now = utcnow()
    _traffic(now)
    assert totals_problems() == []
    hour, day = window_stats(now - timedelta(hours=1)), window_stats(now - timedelta(days=1))
    per_minute, days = requests_per_minute(now, 60), _days()
    report = daily_spend_report("model", None, None)
    cutoff = minutes_cutoff(now)
    old = [m for m in _minutes() if m < cutoff]
    assert old and cutoff == f"{now.date() - timedelta(days=MINUTES_KEPT_DAYS)} 00:00"
    assert prune_minute_rollups(now, batch=7) == len(old)
    assert _minutes() and min(_minutes()) >= cutoff
    assert window_stats(now - timedelta(hours=1)) == hour
    assert window_stats(now - timedelta(days=1)) == day
    assert requests_per_minute(now, 60) == per_minute and _days() == days
    assert daily_spend_report("model", None, None) == report
    assert totals_problems() == []
    assert prune_minute_rollups(now) == 0


def test_doctor_is_clean_half_way_and_names_a_kept_day_that_disagrees(
    migrated_db: Path,
) -> None:
    now = utcnow()
    _traffic(now)
    with write_transaction() as tx:  # a pass stopped after its first batches
        tx.execute(
            "DELETE FROM usage_rollup WHERE id IN (SELECT id FROM usage_rollup WHERE "
            "period = 'minute' ORDER BY bucket LIMIT 5)"
        )
    assert totals_problems() == []
    today = now.date().isoformat()
    with write_transaction() as tx:  # a minute of today lost
        tx.execute(
            "DELETE FROM usage_rollup WHERE id IN (SELECT id FROM usage_rollup WHERE "
            "period = 'minute' AND bucket >= ? ORDER BY bucket LIMIT 1)",
            (today,),
        )
    problems = totals_problems()
    assert len(problems) == 1 and problems[0].startswith(
        f"usage rollups per minute of {today} ("
    ), problems
    assert "in the minute rollups" in problems[0]


async def test_serve_s_loop_prunes_with_usage_retention_off(migrated_db: Path) -> None:
    _traffic(utcnow())
    rows = query_all("SELECT COUNT(*) FROM usage_record")
    start_db_thread()
    task = asyncio.create_task(retention_loop(0))
    try:
        for _ in range(200):
            if min(_minutes()) >= minutes_cutoff():
                break
            await asyncio.sleep(0.05)
        assert min(_minutes()) >= minutes_cutoff()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        stop_db_thread()
    assert query_all("SELECT COUNT(*) FROM usage_record") == rows  # retention off: rows stay


def test_a_served_box_prunes_old_minutes_at_start_and_doctor_stays_clean(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """usage.retention_days is 0 (the default): serve prunes the minutes all the same."""
    box = box_factory()
    _, key = box.new_user("5")
    fake.push(Reply(prompt_tokens=40, completion_tokens=2))
    with box.http(key) as http:
        answer = http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
    assert answer.is_success, answer.text
    box.server.stop()
    old = (utcnow() - timedelta(days=20)).strftime("%Y-%m-%d")
    for period, bucket in (("minute", old + " 10:00"), ("day", old)):  # its traffic, 20 days ago
        write_config_db(
            box.config, "UPDATE usage_rollup SET bucket = ? WHERE period = ?", (bucket, period)
        )
    box.server.start()
    for _ in range(100):
        if not box.query("SELECT bucket FROM usage_rollup WHERE period = 'minute'"):
            break
        time.sleep(0.1)
    assert box.query("SELECT bucket FROM usage_rollup WHERE period = 'minute'") == []
    assert box.query("SELECT bucket, requests FROM usage_rollup WHERE period = 'day'") == [(old, 1)]
    assert "MISMATCH" not in box.cli("doctor")
