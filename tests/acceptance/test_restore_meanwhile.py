"""`restore` and the other codelace-box commands at the same time: a command run while a
restore runs is refused, not committed into the file being replaced."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.acceptance.cli_tools import Box
from tests.support import PROGRAM, cli_env

pytestmark = pytest.mark.timeout(120)


def _restore_holds_the_lock(lock: Path) -> bool:
    """Whether a restore holds `<database>.lock` exclusively (it is past its own check that
    nobody has the database open)."""
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_credit_given_while_a_restore_runs_is_refused_not_lost(tmp_path: Path) -> None:
    """The restore is paused (SIGSTOP) once it holds the database for replacing it, as a big
    backup keeps it there for seconds while it is copied and checked. A `credit` run
    meanwhile said 'balance now ...' and exited 0, but wrote the file the restore then set
    aside: the restored database never had it. It is refused now, saying a restore runs."""
    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "mid@restore.test")
    box.ok("credit", "mid@restore.test", "2", "--reason", "before the backup")
    box.ok("backup", "backups/b.db")
    with _restore_paused(box, "backups/b.db") as restore:
        credit = box.cli("credit", "mid@restore.test", "5", "--reason", "during the restore")
    assert restore.returncode == 0
    shown = json.loads(box.ok("users", "show", "mid@restore.test", "--json"))
    if credit.returncode == 0:  # a credit said to be done is in the database now in use
        assert float(shown["credit_balance_usd"]) == 7, credit.stdout
    assert "being restored" in credit.stderr, credit.stderr
    assert float(shown["credit_balance_usd"]) == 2


def test_a_backup_another_program_writes_for_a_moment_is_waited_for(tmp_path: Path) -> None:
    """A backup file (a rollback journal's: as `backup` leaves it) that another program holds
    in a write for a moment, an sqlite3 shell say: the restore failed at once saying 'waited
    10 s for its write to end' (its first read came before its busy wait was set). It waits."""
    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "wait@restore.test")
    box.ok("backup", "backups/b.db")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE, str(box.root / "backups" / "b.db")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "writing"
        started = time.monotonic()
        box.ok("restore", "backups/b.db")
        assert time.monotonic() - started >= 0.5  # it waited for the write to end
    finally:
        holder.kill()
        holder.wait(10)


HOLD_WRITE = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("writing", flush=True)
time.sleep(1.5)
db.execute("ROLLBACK")
time.sleep(60)
"""


@contextmanager
def _restore_paused(box: Box, backup: str) -> Iterator[subprocess.Popen[str]]:
    """A `restore` of `backup` paused (SIGSTOP) once it holds the database for replacing it,
    as a big backup keeps it there while it is copied and checked; resumed on leaving. The
    test holds a write on the backup meanwhile, so the restore's copy waits for it with the
    database held (a small backup's copy held it for milliseconds: a loaded machine ran the
    whole restore before the test looked)."""
    writing = sqlite3.connect(box.root / backup, isolation_level=None)
    writing.execute("BEGIN EXCLUSIVE")
    restore = subprocess.Popen(
        [*PROGRAM, "--config", str(box.config), "restore", backup],
        cwd=box.root, env=cli_env(None), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    lock = box.db_path.with_name(box.db_path.name + ".lock")
    try:
        deadline = time.monotonic() + 30
        while not (lock.exists() and _restore_holds_the_lock(lock)):
            assert restore.poll() is None and time.monotonic() < deadline, "restore ended"
            time.sleep(0.01)
        os.kill(restore.pid, signal.SIGSTOP)
        assert _restore_holds_the_lock(lock), "the restore was done before it was paused"
        writing.close()  # (its write ends): the restore copies the backup once resumed
        yield restore
    finally:
        writing.close()
        os.kill(restore.pid, signal.SIGCONT)
        restore.communicate(timeout=60)


def test_commands_that_open_the_database_as_it_is_are_refused_during_a_restore(
    tmp_path: Path,
) -> None:
    """`backup`, `doctor`, `audit`, `db copy` and `migrate --status` open the database without
    migrating it, and took no hold: run while a restore ran, they read (and `backup` wrote its
    audit entry into) the file being set aside, and kept it open across the swap, exiting 0 as
    if they had worked on the database in use. They are refused as every other command is."""
    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "open@restore.test")
    box.ok("backup", "backups/b.db")
    with _restore_paused(box, "backups/b.db"):
        during = {
            "backup": box.cli("backup", "backups/during.db"),
            "doctor": box.cli("doctor"),
            "audit": box.cli("audit"),
            "db copy": box.cli("db", "copy", "--to", "sqlite:///copy.db"),
            "migrate --status": box.cli("migrate", "--status"),
        }
    for name, result in during.items():
        assert result.returncode == 1 and "being restored" in result.stderr, (name, result)
    assert not (box.root / "backups" / "during.db").exists()
