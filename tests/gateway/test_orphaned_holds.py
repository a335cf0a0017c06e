"""Holds left by a crash are released at start; holds of a live server on the same database stay."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from codelace_box.billing.ledger import find_mismatches, post_entry
from codelace_box.db.core import connection, utcnow, write_transaction
from codelace_box.db.models import Hold, User
from codelace_box.gateway.holds import (
    OwnerWatch,
    dead_hold_owners,
    release_holds_in,
    release_orphaned_holds,
)
from tests.pg_cluster import wanted_engine
from tests.support import REPO_ROOT, cli_env


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


@pytest.mark.skipif(wanted_engine() == "postgres", reason="SQLite: owners are pids of this host")
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


@pytest.mark.skipif(
    wanted_engine() == "postgres", reason="PostgreSQL: a start frees no owner's holds (sweeps do)"
)
def test_a_hold_of_this_very_pid_counts_as_orphaned(db: None) -> None:
    """At start the server has reserved nothing: a hold naming its pid is from a reused pid."""
    import os

    user = User.create(email="b@example.com")
    _hold(user, 500, f"{socket.gethostname()}:{os.getpid()}")
    assert release_orphaned_holds() == 1
    assert User.get_by_id(user.id).held_nanos == 0
    assert find_mismatches() == []


CLAIMER = (
    "import sys, time; from codelace_box.db.core import claim_owner, open_database; "
    "open_database(sys.argv[1]); claim_owner(sys.argv[2]); print('claimed', flush=True); "
    "time.sleep(120)"
)


def test_postgresql_frees_the_holds_of_a_box_whose_connection_died(pg_db: str) -> None:
    """PostgreSQL, any machine: a box claims its owner name on its connections; while it
    lives its holds stay, once it is killed (-9) the sweeps anywhere see it gone and release
    its holds after their grace. A box's start releases no holds of an owner merely unclaimed
    at that instant (it may be a live box whose sessions were just dropped)."""
    user = User.create(email="c@example.com")
    post_entry(user.id, 10_000, "admin", "seed", "seed:c")
    box = subprocess.Popen(
        [sys.executable, "-c", CLAIMER, pg_db, "far-host:4242"],
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=REPO_ROOT,
    )
    try:
        assert box.stdout is not None and box.stdout.readline().strip() == "claimed"
        _hold(user, 100, "far-host:4242")  # a live box on another machine: stays
        _hold(user, 200, "far-host:9999")  # nobody claims it: its box is gone
        assert release_orphaned_holds() == 0  # left to the sweeps' grace
        assert dead_hold_owners() == ["far-host:9999"]
        box.kill()  # SIGKILL: no goodbye, only the dropped connection
        box.wait()
        deadline = time.monotonic() + 10
        while len(dead_hold_owners()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(dead_hold_owners()) == ["far-host:4242", "far-host:9999"]
        watch = OwnerWatch()
        assert watch.long_gone(grace_sec=60) == []  # seen gone once: not yet
        with write_transaction() as tx:
            assert release_holds_in(tx, owners=watch.long_gone(grace_sec=0)) == 2
    finally:
        box.kill()
        box.wait()
    assert Hold.select().count() == 0
    assert User.get_by_id(user.id).held_nanos == 0
    assert find_mismatches() == []
