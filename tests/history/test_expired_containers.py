"""The Anthropic containers answered to users (db/containers.py) are deleted by serve's
retention loop once expired (a day's grace past Anthropic's expiry), usage retention off too;
the others stay, and an expiry answered again is refreshed, never its owner changed."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

from codelace_box.accounts.users import create_user
from codelace_box.db.containers import (
    MOST_DAYS,
    container_owner,
    record_container_in,
    stored_expiry,
)
from codelace_box.db.core import db_time, query_all, utcnow, write_transaction
from codelace_box.db.offload import start_db_thread, stop_db_thread
from codelace_box.reports.history import retention_loop


def _ids() -> list[str]:
    rows = query_all("SELECT container_id FROM anthropic_container ORDER BY container_id")
    return [str(r[0]) for r in rows]


def _iso(days: float) -> str:
    return (utcnow() + timedelta(days=days)).isoformat() + "Z"


async def test_serve_s_loop_deletes_expired_containers(migrated_db: Path) -> None:
    owner = create_user("c@x.test").id
    with write_transaction() as tx:
        for name, days in (("gone", -3.0), ("grace", -0.5), ("live", 0.04), ("later", 9.0)):
            record_container_in(tx, owner, f"container_{name}", _iso(days))
    start_db_thread()
    task = asyncio.create_task(retention_loop(0))
    try:
        for _ in range(200):
            if "container_gone" not in _ids():
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        stop_db_thread()
    assert _ids() == ["container_grace", "container_later", "container_live"]


def test_an_answered_container_keeps_its_owner(migrated_db: Path) -> None:
    first, other = create_user("a@x.test").id, create_user("b@x.test").id
    with write_transaction() as tx:
        record_container_in(tx, first, "container_x", _iso(0.01))
        record_container_in(tx, other, "container_x", _iso(5))  # never: refused before
        refreshed = _iso(1)
        record_container_in(tx, first, "container_x", refreshed)
    assert container_owner("container_x") == first
    assert container_owner("container_y") is None
    now = utcnow()
    stored = query_all("SELECT expires_at FROM anthropic_container")[0][0]
    assert str(stored) == db_time(datetime.fromisoformat(refreshed.removesuffix("Z")))
    assert stored_expiry("not a time", now) == db_time(now + timedelta(days=MOST_DAYS))
    assert stored_expiry(_iso(400), now) == db_time(now + timedelta(days=MOST_DAYS))
    assert stored_expiry("9999-12-31T23:59:59-14:00", now) == db_time(now + timedelta(days=30))


def test_an_id_the_table_cannot_hold_is_not_kept(migrated_db: Path) -> None:
    """An upstream's odd id (over 255 characters, a NUL) leaves the settlement whole."""
    owner = create_user("d@x.test").id
    with write_transaction() as tx:
        for odd in ("container_" + "x" * 300, "container_\x00x", ""):
            record_container_in(tx, owner, odd, None)
    assert _ids() == []
