"""Holds left by a crash are released at start; holds of a live server on the same database stay."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from codelace_box.billing.ledger import find_mismatches, post_entry
from codelace_box.db.core import connection, utcnow
from codelace_box.db.models import Hold, User
from codelace_box.gateway.metering import release_orphaned_holds


@pytest.fixture
def db(migrated_db: Path) -> None:
    """Each test on its own migrated database."""


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _hold(user: User, amount: int, owner: str, age_sec: float = 0) -> None:
    created = str(utcnow() - timedelta(seconds=age_sec))
    connection().execute(
        "INSERT INTO hold (user_id, amount_nanos, request_id, created_at, owner) "
        "VALUES (?, ?, ?, ?, ?)",
        (user.id, amount, f"req_{owner}_{amount}", created, owner),
    )
    User.update(held_nanos=User.held_nanos + amount).where(User.id == user.id).execute()


def test_only_holds_of_gone_processes_or_too_old_are_released(db: None) -> None:
    host = socket.gethostname()
    user = User.create(email="a@example.com")
    post_entry(user.id, 10_000, "admin", "seed", "seed:1")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _hold(user, 100, f"{host}:{live.pid}")  # another server still running: stays
        _hold(user, 200, f"{host}:{_dead_pid()}")  # its process is gone: released
        _hold(user, 400, "")  # written before owners were recorded: released
        _hold(user, 800, f"{host}:{live.pid}", age_sec=7 * 3600)  # older than any request
        _hold(user, 1600, f"other-host:{live.pid}")  # another host's: ages out, stays now

        assert release_orphaned_holds() == 3
    finally:
        live.kill()
        live.wait()

    remaining = sorted(h.amount_nanos for h in Hold.select())
    assert remaining == [100, 1600]
    assert User.get_by_id(user.id).held_nanos == 1700
    assert find_mismatches() == []


def test_a_hold_of_this_very_pid_counts_as_orphaned(db: None) -> None:
    """At start the server has reserved nothing: a hold naming its pid is from a reused pid."""
    import os

    user = User.create(email="b@example.com")
    _hold(user, 500, f"{socket.gethostname()}:{os.getpid()}")
    assert release_orphaned_holds() == 1
    assert User.get_by_id(user.id).held_nanos == 0
    assert find_mismatches() == []
