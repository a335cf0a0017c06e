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
    hold_owner,
    own_holds_older_than,
    release_holds_in,
    release_orphaned_holds,
)
from codelace_box.gateway.pipeline import LEAK_AGE_SEC
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


@pytest.mark.skipif(wanted_engine() == "postgres", reason="SQLite: owners are pids of this host")
def test_a_killed_server_not_yet_reaped_is_gone(db: None) -> None:
    """A server killed (kill -9, the OOM killer) whose parent has not reaped it yet (an init
    that reaps late, as in many containers; a restart right after the kill) still answered
    kill(pid, 0), as a zombie: its holds stayed until a sweep after the reaping, or for 6 hours
    where nothing reaped it."""
    user = User.create(email="zombie@example.com")
    post_entry(user.id, 10_000, "admin", "seed", "seed:1")
    killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        killed.kill()  # not waited for: a zombie until killed.wait() below
        stat = Path(f"/proc/{killed.pid}/stat")
        deadline = time.monotonic() + 10
        while stat.read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        owner = f"{socket.gethostname()}:{killed.pid}:0badc0de"
        _hold(user, 300, owner)
        assert dead_hold_owners() == [owner]  # a running box's sweep
        assert release_orphaned_holds() == 1  # a start
    finally:
        killed.wait()
    assert User.get_by_id(user.id).held_nanos == 0
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


@pytest.mark.skipif(wanted_engine() == "postgres", reason="SQLite: owners are pids of this host")
def test_an_owner_is_one_process_start_and_older_owners_are_still_read(db: None) -> None:
    """'<host>:<pid>:<token>': this process's pid under another token is an earlier process's
    (a box restarted as pid 1 in its container), freed at start; a sweep leaves it (then it is
    a live box of another pid namespace with this hostname). A gone pid is gone with or
    without a token."""
    import os

    host, pid, token = hold_owner().split(":")
    assert (host, pid) == (socket.gethostname(), str(os.getpid()))
    assert len(token) == 8 and int(token, 16) >= 0
    user = User.create(email="t@example.com")
    post_entry(user.id, 10_000, "admin", "seed", "seed:t")
    earlier = f"{host}:{os.getpid()}:{(int(token, 16) + 1) % 2**32:08x}"  # another token
    dead = _dead_pid()
    _hold(user, 100, earlier)
    _hold(user, 200, f"{host}:{dead}:0123abcd")
    _hold(user, 400, f"{host}:{dead}")  # written before owners had a token
    _hold(user, 800, hold_owner())
    assert sorted(dead_hold_owners()) == sorted([f"{host}:{dead}:0123abcd", f"{host}:{dead}"])
    assert release_orphaned_holds() == 3  # at start: the earlier process's too
    assert [h.amount_nanos for h in Hold.select()] == [800]
    assert find_mismatches() == []


def test_every_process_is_another_owner_even_with_the_same_pid() -> None:
    """A forked child (a server worker) is an owner of its own; and the token is new in every
    process, so two processes that had one pid (pid 1 in two containers) are two owners."""
    import os

    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        os.write(write, hold_owner().encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child_owner = pipe.read()
    os.waitpid(child, 0)
    assert child_owner.split(":")[:2] == [socket.gethostname(), str(child)]
    assert child_owner.split(":")[2] != hold_owner().split(":")[2]
    tokens = subprocess.run(
        [sys.executable, "-c", OWNER_TWICE], capture_output=True, text=True, check=True,
        env=cli_env(), cwd=REPO_ROOT,
    ).stdout.split()  # fmt: skip
    assert len(tokens) == 2 and tokens[0] != tokens[1]


OWNER_TWICE = (  # the module loaded afresh twice in one process (same host, same pid)
    "import importlib, sys; import codelace_box.gateway.holds as h; first = h.hold_owner(); "
    "print(first, importlib.reload(h).hold_owner())"
)

CLAIMER = (
    "import sys, time; from codelace_box.db.core import open_database; "
    "from codelace_box.db.owners import claim_owner; "
    "open_database(sys.argv[1]); claim_owner(sys.argv[2]); print('claimed', flush=True); "
    "time.sleep(120)"
)


def claiming_box(pg_db: str, owner: str) -> subprocess.Popen[str]:
    """A process that claims `owner` on its PostgreSQL sessions and keeps them, as a live box."""
    box = subprocess.Popen(
        [sys.executable, "-c", CLAIMER, pg_db, owner],
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=REPO_ROOT,
    )
    assert box.stdout is not None and box.stdout.readline().strip() == "claimed"
    return box


def test_postgresql_frees_the_holds_of_a_box_whose_connection_died(pg_db: str) -> None:
    """PostgreSQL, any machine: a box claims its owner name on its connections; while it
    lives its holds stay, once it is killed (-9) the sweeps anywhere see it gone and release
    its holds after their grace. A box's start releases no holds of an owner merely unclaimed
    at that instant (it may be a live box whose sessions were just dropped)."""
    user = User.create(email="c@example.com")
    post_entry(user.id, 10_000, "admin", "seed", "seed:c")
    box = claiming_box(pg_db, "far-host:4242")
    try:
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


def test_postgresql_never_frees_a_live_box_holds_by_their_age(pg_db: str) -> None:
    """Boxes on one PostgreSQL database read hold ages on their own clocks. A box whose clock
    runs seven hours ahead (a hardware clock kept in local time, UTC+7, and no NTP; or a step
    forward while calls are in flight) saw every other box's holds as older than any request
    lives: its start and each of its sweeps freed them while their calls ran, and those calls
    then found no hold at settlement and were never charged. On PostgreSQL a box is alive while
    its sessions claim its owner name, so only that frees its holds, never their age."""
    user = User.create(email="skew@example.com")
    post_entry(user.id, 10_000, "admin", "seed", "seed:skew")
    box = claiming_box(pg_db, "slow-clock-host:4242")
    try:
        _hold(user, 100, "slow-clock-host:4242", age_sec=7 * 3600)  # stamped by its clock
        assert release_orphaned_holds() == 0
        assert own_holds_older_than(LEAK_AGE_SEC) == []
        assert dead_hold_owners() == []
    finally:
        box.kill()
        box.wait()
    assert [h.amount_nanos for h in Hold.select()] == [100]
    assert User.get_by_id(user.id).held_nanos == 100
