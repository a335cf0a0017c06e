"""SQLite's fsync of the WAL after a transaction that asked for it (db/core.py durable()):
SQLite refuses to switch synchronous=FULL on inside a transaction, so the WAL is synced once
the outermost transaction committed."""

from __future__ import annotations

import os
import threading
from typing import Any

import apsw


class _SyncAfterCommit(threading.local):
    """SQLite: whether a durable() ran in this thread's transaction. A default on the class:
    `getattr(local, name, default)` on a plain threading.local builds an AttributeError each
    time the name is unset (1.6 us; every COMMIT asks)."""

    wanted = False


_sync_after_commit = _SyncAfterCommit()


def after_commit(conn: Any, committed: bool) -> None:
    """After the outermost COMMIT (or ROLLBACK) on SQLite: fsync the WAL if a durable() asked."""
    if not _sync_after_commit.wanted:
        return
    _sync_after_commit.wanted = False
    if committed and isinstance(conn, apsw.Connection) and conn.filename_wal:
        fd = os.open(conn.filename_wal, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def ask() -> None:
    """Sync the WAL once this thread's outermost transaction commits."""
    _sync_after_commit.wanted = True
