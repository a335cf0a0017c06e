"""The database engine: one peewee APSWDatabase (SQLite) per process, and the one way to use it.

Peewee models bind to `database`, which `open_database()` points at the configured file.
Everything else asks this module, never the engine: `write_transaction()` runs a write
(BEGIN IMMEDIATE ... COMMIT, a SAVEPOINT when nested; peewee's own `atomic()` nests inside it),
`query_all()` / `query_one()` run a read, and a `Tx` (what `write_transaction()` yields and
`connection()` returns) runs hand-written statements (`db/hotpath.py`). Never await inside a
transaction: all coroutines of a server process share the one connection.

What is SQLite's own is named here: the pragmas, `BEGIN IMMEDIATE` (the write lock taken up
front), `LOCK_ROWS` (a row read under a lock), `?` parameters (qmark), `is_busy()` (the lock
wait that timed out), `quick_check()`, timestamps stored as text (`db_time()`, `parse_time()`,
`minute_sql()`, `day_sql()`, `minute_of()`, `day_of()`) and the substring test of the reports'
filters (`contains_sql()`).
A second engine slots in behind these names and a `hotpath` of its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import apsw
from peewee import Database, DatabaseProxy
from peewee import DatabaseError as PeeweeDatabaseError
from peewee import OperationalError as PeeweeOperationalError
from playhouse.apsw_ext import APSWDatabase

from codelace_box.errors import ConfigError
from codelace_box.private_files import create_private_file, make_private, make_private_dir

ENGINE = "sqlite"
BUSY_TIMEOUT_SEC = 10.0
MAX_SQLITE_INTEGER = 2**63 - 1  # the largest INTEGER (and rowid) SQLite stores
PRAGMAS = (
    ("journal_mode", "wal"),
    ("foreign_keys", 1),
    ("synchronous", "normal"),
    ("cache_size", -16000),
    ("temp_store", "memory"),
)
BEGIN_WRITE = "BEGIN IMMEDIATE"  # SQLite: take the write lock now, not at the first write
# What makes a SELECT lock the rows it reads until the transaction ends. SQLite: nothing, the
# IMMEDIATE transaction already holds the one write lock; PostgreSQL: " FOR UPDATE".
LOCK_ROWS = ""
_SAVEPOINT, _ROLLBACK_TO, _RELEASE = (
    f"{verb} nested_write" for verb in ("SAVEPOINT", "ROLLBACK TO", "RELEASE")
)

Row = tuple[Any, ...]
Params = Sequence[Any]  # positional, `?` in the statement text

database = DatabaseProxy()


class Rows(Protocol):
    """What a statement returns: its rows, one at a time or all."""

    def fetchone(self) -> Any: ...  # a row, or None
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Tx(Protocol):
    """The process's connection as feature code may use it: run a statement, count its rows."""

    def execute(self, sql: str, params: Params = ..., /) -> Rows: ...
    def changes(self) -> int: ...


def _as_tx(conn: apsw.Connection) -> Tx:
    return conn  # mypy holds apsw's connection to the Tx protocol here


def connection() -> Tx:
    """The process's connection (opened if closed), for reads and, inside a write
    transaction, for hand-written writes."""
    return _as_tx(database.connection())


def query_all(sql: str, params: Params = ()) -> list[Row]:
    """Every row of a read."""
    return connection().execute(sql, params).fetchall()


def query_one(sql: str, params: Params = ()) -> Row | None:
    """The first row of a read, or None."""
    row: Row | None = connection().execute(sql, params).fetchone()
    return row


def ping() -> None:
    """Reach the database (opening the connection if closed): a liveness check."""
    query_one("SELECT 1")


def aggregate(sql: str, params: Params = ()) -> Row:
    """The one row of an aggregate read (COUNT, SUM: there always is one)."""
    row = query_one(sql, params)
    if row is None:
        raise LookupError(f"an aggregate returned no row: {sql[:60]}")
    return row


class Savepoint:
    """A SAVEPOINT in the open transaction `tx`: what runs inside rolls back alone on error.
    (The group commit's unit, so it skips looking the connection up again.)"""

    __slots__ = ("_tx",)

    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def __enter__(self) -> Tx:
        self._tx.execute(_SAVEPOINT)
        return self._tx

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None:
            self._tx.execute(_ROLLBACK_TO)
        self._tx.execute(_RELEASE)


class WriteTransaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error); inside an open transaction, a SAVEPOINT
    that rolls back alone. Peewee learns of the outer one: its `atomic()` nests as a savepoint."""

    __slots__ = ("_conn", "_nested")

    def __enter__(self) -> Tx:
        conn = database.connection()
        self._conn = conn
        if not conn.getautocommit():
            self._nested: Savepoint | None = Savepoint(conn)
            return self._nested.__enter__()
        self._nested = None
        conn.execute(BEGIN_WRITE)
        database.push_transaction(self)
        return _as_tx(conn)

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        conn = self._conn
        if self._nested is not None:
            self._nested.__exit__(exc_type, *rest)
            return
        database.pop_transaction()
        if exc_type is not None:
            _rollback(conn)
            return
        try:
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise


def _rollback(conn: apsw.Connection) -> None:
    if not conn.getautocommit():  # SQLite may have rolled back already (e.g. disk full)
        conn.execute("ROLLBACK")


def write_transaction() -> WriteTransaction:
    """A write transaction (nested calls become savepoints): `with write_transaction() as tx:`."""
    return WriteTransaction()


def is_busy(exc: BaseException) -> bool:
    """SQLite's 'database is locked' after the busy timeout, as apsw or peewee raise it."""
    return isinstance(exc, apsw.BusyError) or (
        isinstance(exc, PeeweeOperationalError) and "locked" in str(exc)
    )


def quick_check(db: Database) -> list[str]:
    """SQLite's integrity check of the file: ['ok'], or what is wrong."""
    return [row[0] for row in db.execute_sql("PRAGMA quick_check").fetchall()]


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
            if not create_private_file(target):
                make_private(target)
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


def db_time(moment: datetime) -> str:
    """A moment in the stored text form of timestamps ('YYYY-MM-DD HH:MM:SS.ffffff')."""
    return str(moment.replace(tzinfo=None))


def parse_time(value: Any) -> datetime:
    """A stored timestamp back to a naive UTC datetime."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.fromisoformat(str(value)).replace(tzinfo=None)


def minute_sql(column: str) -> str:
    """SQL for the minute of a stored timestamp, 'YYYY-MM-DD HH:MM' (the start of its text)."""
    return f"substr({column}, 1, 16)"


def day_sql(column: str) -> str:
    """SQL for the day of a stored timestamp, 'YYYY-MM-DD' (the start of its text)."""
    return f"substr({column}, 1, 10)"


def minute_of(moment: str) -> str:
    """The minute bucket of a stored timestamp's text ('YYYY-MM-DD HH:MM')."""
    return moment[:16]


def day_of(moment: str) -> str:
    """The day bucket of a stored timestamp's text ('YYYY-MM-DD')."""
    return moment[:10]


def contains_sql(column: str) -> str:
    """SQL that is true when the lower-cased text of `column` (NULL: empty) contains the next
    `?` parameter (lower-cased by the caller)."""
    return f"instr(lower(COALESCE({column}, '')), ?) > 0"


def engine_version() -> str:
    """The database engine and its library, for `version --verbose`."""
    return f"sqlite {apsw.sqlite_lib_version()} (apsw {apsw.apsw_version()})"
