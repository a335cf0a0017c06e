"""The SQLite database: one peewee APSWDatabase per process, WAL, foreign keys, IMMEDIATE writes.

Peewee models bind to `database`, which `open_database()` points at the configured file.
Every read-modify-write runs inside `write_transaction()` (BEGIN IMMEDIATE) and never awaits
inside it: all coroutines of a server process share the one connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import apsw
from peewee import DatabaseError as PeeweeDatabaseError
from peewee import DatabaseProxy
from playhouse.apsw_ext import APSWDatabase

from codelace_box.errors import ConfigError
from codelace_box.private_files import create_private_file, make_private_dir

BUSY_TIMEOUT_SEC = 10.0
MAX_SQLITE_INTEGER = 2**63 - 1  # the largest INTEGER (and rowid) SQLite stores
PRAGMAS = (
    ("journal_mode", "wal"),
    ("foreign_keys", 1),
    ("synchronous", "normal"),
    ("cache_size", -16000),
    ("temp_store", "memory"),
)

database = DatabaseProxy()


def open_database(path: str | Path) -> APSWDatabase:
    """Open the SQLite file and bind the models to it; a new database (and a new folder for
    it) is private: file 600 (its -wal and -shm follow), folder 700, whatever the umask."""
    target = Path(path)
    db = APSWDatabase(str(target), pragmas=PRAGMAS, timeout=BUSY_TIMEOUT_SEC)
    if target.is_dir():
        raise ConfigError(f"database.path {path}: is a folder; name the database file in it")
    try:
        if str(path) != ":memory:":
            make_private_dir(target.parent)
            create_private_file(target)
        db.connect(reuse_if_open=True)
    except (FileExistsError, NotADirectoryError):  # mkdir met a file where a folder should be
        raise ConfigError(
            f"database.path {path}: cannot open the database: a file is in the way of its folder"
        ) from None
    except (OSError, apsw.Error, PeeweeDatabaseError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"database.path {path}: cannot open the database: {reason}") from None
    database.initialize(db)
    return db


def close_database() -> None:
    """Close this process's connection, if open."""
    if database.obj is not None and not database.is_closed():
        database.close()


def write_transaction():  # type: ignore[no-untyped-def]
    """A BEGIN IMMEDIATE transaction (nested calls become savepoints)."""
    return database.atomic("IMMEDIATE")


@contextmanager
def durable() -> Iterator[None]:
    """Commit what runs inside with an fsync (synchronous=FULL), e.g. a credit before a 2xx."""
    database.execute_sql("PRAGMA synchronous=FULL")
    try:
        with write_transaction():
            yield
    finally:
        database.execute_sql("PRAGMA synchronous=NORMAL")


def utcnow() -> datetime:
    """Now, as a naive UTC datetime (how timestamps are stored)."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso_z(moment: datetime | None) -> str | None:
    """ISO 8601 UTC with a Z, as the API shows timestamps."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"
