"""Migrating a SQLite file that another process has open is refused: an older release's `serve`
still running there would go on writing rows the new schema does not expect.

SQLite's exclusive locking mode takes the file for one connection; in WAL mode it cannot while
any other process holds a connection to it, even an idle one (a `serve` between requests), so
the attempt tells whether anyone else is there. Migrates of this release take turns first
(`<database>.migrate.lock`, flock): one waiting for its turn closes its connection meanwhile,
since two of them each waiting for the file to be its alone waited on each other until one
gave up. SQLite files only: PostgreSQL boxes take turns through migration_lock.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from codelace_box.db.failures import is_busy
from codelace_box.db.sqlite_file import BUSY_TIMEOUT_SEC
from codelace_box.errors import NotReady

RETRY_SEC = 0.05


@contextmanager
def sole_connection(db: Any, still_needed: Callable[[], bool], version: int) -> Iterator[None]:
    """Hold the file for this connection alone for the block, once this process's turn among
    the migrates of this release came (`_my_turn`). While another process has it open, wait
    (up to the busy timeout) for it to close, or for `still_needed()` to turn false (another
    `migrate` of this release started the work: the block then goes on beside it as before);
    then refuse with one line saying what to do."""
    turn = _my_turn(db)
    try:
        if not still_needed():  # the migrate whose turn came before this one's did it
            yield
            return
        connection = db.connection()
        connection.set_busy_timeout(0)
        db.execute_sql("PRAGMA locking_mode = EXCLUSIVE")
        try:
            if not _wait_alone(db, still_needed, version):
                _share_again(db, connection)  # beside another migrate: take turns, as it does
            yield
        finally:
            _share_again(db, connection)
    finally:
        if turn is not None:
            os.close(turn)  # closing the file drops its flock


def _my_turn(db: Any) -> int | None:
    """The open lock file once this process's turn to migrate came (flock); while another
    migrate of this release has it, this connection is closed (it would keep that one from
    having the file alone) and opened again after. None where the lock file cannot be opened
    (one made by another user): no turns, as before."""
    path = f"{db.database}.migrate.lock"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        db.close()
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # as long as the other's migration takes
        except BaseException:
            os.close(fd)
            raise
        db.connect()
    return fd


def _share_again(db: Any, connection: Any) -> None:
    """Back to sharing the file: normal locking mode, the lock let go, the busy timeout."""
    db.execute_sql("PRAGMA locking_mode = NORMAL")
    db.execute_sql("SELECT COUNT(*) FROM sqlite_master").fetchall()  # lets the lock go
    connection.set_busy_timeout(int(BUSY_TIMEOUT_SEC * 1000))


def _wait_alone(db: Any, still_needed: Callable[[], bool], version: int) -> bool:
    """True once the file is this connection's alone; False when `still_needed()` turned false
    (another migrate of this release moved on: the caller goes on beside it)."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SEC
    while True:
        try:
            db.execute_sql("BEGIN EXCLUSIVE")
            db.execute_sql("COMMIT")  # the lock stays: exclusive locking mode keeps it
            return True
        except Exception as exc:
            if not is_busy(exc):
                raise
        if not still_needed():
            return False
        if time.monotonic() >= deadline:
            raise NotReady(
                f"{db.database} is at schema version {version} and open in another process "
                "(the older codelace-box `serve` or `admin` still running?): stop it, then run "
                "`codelace-box migrate` (or start the new serve, which migrates first)"
            )
        time.sleep(RETRY_SEC)
