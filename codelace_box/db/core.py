"""The database engine: one peewee APSWDatabase (SQLite) per process, and the one way to use it.

Models bind to `database` (`open_database()`); the rest asks this module, never the engine:
`write_transaction()` (BEGIN IMMEDIATE ... COMMIT, nested: a SAVEPOINT; the usage totals it
counted are written just before its COMMIT, db/totals.py), `query_all()` / `query_one()`, and
a `Tx` (hand-written statements, db/hotpath.py; `statements()`, the request path's). Never
await inside a transaction.

SQLite's own parts are named here: the pragmas, `BEGIN IMMEDIATE`, `LOCK_ROWS`, `?` (qmark),
`quick_check()`, timestamps stored as text (`db_time()`, `parse_time()`,
`minute_of()`, `day_of()`; the SQL fragments that read them, `minute_sql()`, `day_sql()`,
and `contains_sql()` are db/dialect.py's). PostgreSQL (`database.url`, many boxes on one
database) sits behind the same names (the SQL fragments format its TIMESTAMPs as SQLite's
text); its own parts are in db/postgres.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import apsw
from peewee import Database
from peewee import DatabaseError as PeeweeDatabaseError
from playhouse.apsw_ext import APSWDatabase

from codelace_box.db import postgres, timestamps, totals, wal_sync
from codelace_box.db.sqlite_file import open_sqlite_file
from codelace_box.errors import ConfigError, NotReady

SQLITE, POSTGRES = "sqlite", "postgres"
SQLITE_URL = "sqlite:///"
POSTGRES_URLS = ("postgresql://", "postgres://")
MAX_SQLITE_INTEGER = 2**63 - 1  # the largest INTEGER (and rowid) SQLite stores
BEGIN_WRITE = "BEGIN IMMEDIATE"  # SQLite: take the write lock now, not at the first write
# What makes a SELECT lock the rows it reads until the transaction ends, by engine (`lock_rows()`).
# SQLite: nothing, the IMMEDIATE transaction already holds the one write lock; PostgreSQL
# (READ COMMITTED): " FOR UPDATE", so a second box's writer waits for the row.
LOCK_ROWS = {SQLITE: "", POSTGRES: " FOR UPDATE"}
_SAVEPOINT, _ROLLBACK_TO, _RELEASE = (
    f"{verb} nested_write" for verb in ("SAVEPOINT", "ROLLBACK TO", "RELEASE")
)

# The stored timestamps' form (db/timestamps.py), asked of this module as everything else.
EARLIEST = timestamps.EARLIEST
utcnow, iso_z, db_time = timestamps.utcnow, timestamps.iso_z, timestamps.db_time
parse_time, minute_of, day_of = timestamps.parse_time, timestamps.minute_of, timestamps.day_of
iso_to_utc = timestamps.iso_to_utc

Row = tuple[Any, ...]
Params = Sequence[Any]  # positional, `?` in the statement text

database = totals.DatabaseProxy()  # peewee's savepoints forget their totals too
# What `database` stands for, read without it (a read of a peewee Proxy's attribute goes
_target: list[Any] = [None]  # through its `__getattr__` hook: 580 instructions, 14 a call)
database.attach_callback(partial(_target.__setitem__, 0))
_engine = [SQLITE]  # the engine open_database() opened last
_pg_tx: dict[int, tuple[Any, Tx]] = {}  # id(connection) -> its Tx


def engine() -> str:
    """The engine of the open database: "sqlite" or "postgres"."""
    return _engine[0]


def lock_rows() -> str:
    """What to append to a SELECT so that its rows stay locked until the transaction ends."""
    return LOCK_ROWS[_engine[0]]


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


def _open() -> Any:
    """The database `database` stands for (`initialize`d by `open_database()`)."""
    db = _target[0]
    if db is None:
        raise AttributeError("Cannot use uninitialized Proxy.")  # as peewee's Proxy says
    return db


def connection() -> Tx:
    """The process's connection (opened if closed): reads, and writes inside a transaction."""
    conn = _open().connection()
    if _engine[0] == SQLITE:
        return _as_tx(conn)
    return _pg(conn)


class Statements:
    """A SQLite connection as the request path runs its statements: through one cursor of it,
    kept. `Connection.execute` makes a cursor for every statement (about 3,200 instructions
    of a statement's 8,600 to 13,000); a kept cursor resets its last statement when it runs
    the next. So only for statements whose rows are read to their end at once (`fetchall()`,
    or none: a SELECT left part-read would hold its read snapshot open until the cursor's next
    statement), none run while another's rows are still being read."""

    __slots__ = ("changes", "connection", "execute", "getautocommit")

    def __init__(self, conn: apsw.Connection) -> None:
        self.connection = conn
        self.execute = conn.cursor().execute
        self.changes = conn.changes
        self.getautocommit = conn.getautocommit


# The kept cursor of the connection it was last asked for. Each thread has a connection of its
# own (peewee's state is per thread), so one found here for this thread's connection is this
# thread's; another thread's only replaces it.
_kept: list[Statements | None] = [None]


def statements() -> Tx:
    """`connection()` for the request path's statements (see `Statements`): on SQLite through
    its kept cursor; on PostgreSQL the same Tx."""
    conn = _open().connection()
    return _kept_cursor(conn) if _engine[0] == SQLITE else _pg(conn)


def _kept_cursor(conn: Any) -> Tx:
    kept = _kept[0]
    if kept is None or kept.connection is not conn:
        kept = _kept[0] = Statements(conn)
    return kept


def _pg(conn: Any) -> Tx:
    """The Tx of a psycopg connection (one per connection while it is open; those of sessions
    that ended, dropped by the server or closed, go when a new one opens)."""
    cached = _pg_tx.get(id(conn))
    if cached is None or cached[0] is not conn:
        from codelace_box.db.pg_driver import PgTx  # psycopg: on PostgreSQL only

        for key, (old, _) in list(_pg_tx.items()):
            if old.closed:
                _pg_tx.pop(key, None)
        cached = (conn, PgTx(conn))
        _pg_tx[id(conn)] = cached
    return cached[1]


def query_all(sql: str, params: Params = ()) -> list[Row]:
    """Every row of a read."""
    return connection().execute(sql, params).fetchall()


def query_one(sql: str, params: Params = ()) -> Row | None:
    """The first row of a read, or None."""
    row: Row | None = connection().execute(sql, params).fetchone()
    return row


def ping() -> None:  # reach the database (opening the connection if closed)
    query_one("SELECT 1")


def aggregate(sql: str, params: Params = ()) -> Row:
    """The one row of an aggregate read (COUNT, SUM: there always is one)."""
    row = query_one(sql, params)
    if row is None:
        raise LookupError(f"an aggregate returned no row: {sql[:60]}")
    return row


class Savepoint:
    """A SAVEPOINT in the open transaction `tx`: what runs inside rolls back alone on error."""

    __slots__ = ("_mark", "_tx")

    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def __enter__(self) -> Tx:
        _still_open(self._tx)  # else SAVEPOINT would begin (and RELEASE commit) on its own
        self._tx.execute(_SAVEPOINT)
        self._mark = totals.mark()
        return self._tx

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is not None:
            totals.forget_since(self._mark)  # first: ROLLBACK TO fails if SQLite ended it all
            if not _in_transaction(self._tx):  # PostgreSQL's session closed mid-statement
                return  # (Ctrl-C, pg_driver.PgTx): the server rolled it all back
            self._tx.execute(_ROLLBACK_TO)
        self._tx.execute(_RELEASE)


class TransactionLost(Exception):
    """SQLite ended the open transaction itself (a full disk, an I/O error: not a statement)."""


def _still_open(tx: Any) -> None:  # PostgreSQL never does (a lost connection raises anyway)
    if isinstance(tx, (apsw.Connection, Statements)) and tx.getautocommit():
        raise TransactionLost("the database rolled the transaction back (disk full?)")


def pipelined() -> AbstractContextManager[None]:
    """Statements sent without waiting for each answer where the engine can (PostgreSQL's
    pipeline mode: pg_driver.PgTx; `sync(tx)` waits for them); SQLite: nothing changes."""
    conn: Any = connection()
    return conn.pipelined() if _engine[0] == POSTGRES else nullcontext()


def sync(tx: Tx) -> None:
    """Inside `pipelined()`: wait for the answers of what was sent (raising the first error)."""
    if _engine[0] == POSTGRES:
        tx.sync()  # type: ignore[attr-defined]


class WriteTransaction:
    """BEGIN IMMEDIATE (SQLite; PostgreSQL: BEGIN) ... COMMIT (ROLLBACK on error); inside an
    open transaction, a SAVEPOINT that rolls back alone. Peewee learns of the outer one: its
    `atomic()` nests as a savepoint. BEGIN, the totals and COMMIT run through `statements()`;
    `kept_cursor`: so do the statements run inside (the group commit's writes: see
    `Statements`), else the Tx given is `connection()`."""

    __slots__ = ("_conn", "_counted", "_kept", "_nested", "_tx")

    def __init__(self, kept_cursor: bool = False) -> None:
        self._kept = kept_cursor

    def __enter__(self) -> Tx:
        conn = connection()
        self._conn = conn
        tx = self._tx = _kept_cursor(conn) if _engine[0] == SQLITE else conn
        given = tx if self._kept else conn
        if _in_transaction(conn):
            self._nested: Savepoint | None = Savepoint(given)
            return self._nested.__enter__()
        self._nested = None
        tx.execute(BEGIN_WRITE if _engine[0] == SQLITE else "BEGIN")
        _open().push_transaction(self)
        self._counted = totals.begin()
        return given

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        conn = self._conn
        if self._nested is not None:
            self._nested.__exit__(exc_type, *rest)
            return
        _open().pop_transaction()
        if exc_type is not None:
            totals.discard()
            _rollback(conn)
            wal_sync.after_commit(conn, committed=False)
            return
        try:
            _still_open(conn)  # a write's failure ended it: its totals are gone with it
            totals.write(self._tx, self._counted)  # its usage rows' totals, summed per row
            self._tx.execute("COMMIT")
        except BaseException:
            totals.discard()
            _rollback(conn)
            wal_sync.after_commit(conn, committed=False)
            raise
        wal_sync.after_commit(conn, committed=True)


def _in_transaction(conn: Any) -> bool:
    if isinstance(conn, (apsw.Connection, Statements)):
        return not conn.getautocommit()
    return bool(conn.in_transaction())


def _rollback(conn: Any) -> None:
    if _in_transaction(conn):  # SQLite may have rolled back already (e.g. disk full)
        conn.execute("ROLLBACK")


def write_transaction(kept_cursor: bool = False) -> WriteTransaction:
    """A write transaction (nested calls become savepoints): `with write_transaction() as tx:`
    (`kept_cursor`: see `WriteTransaction`)."""
    return WriteTransaction(kept_cursor)


def exclusive(tx: Tx, name: str) -> None:
    """Inside a write transaction: one writer at a time for `name` (an email, an idempotency
    key, a rate-limit bucket) until the transaction ends, so a check-then-write on it cannot
    race. SQLite's BEGIN IMMEDIATE already admits one writer; on PostgreSQL this is a
    transaction advisory lock, held across every box."""
    if _engine[0] == POSTGRES:
        tx.execute(postgres.XACT_LOCK_SQL, (name,))


def table_exists(table: str) -> bool:  # whether the open database has this table
    return bool(database.table_exists(table))


def quick_check(db: Database) -> list[str]:
    """SQLite's integrity check: ['ok'], or what is wrong, a line each (PostgreSQL:
    postgres.quick_check). SQLite's rows may span lines (`*** in database main ***\nPage 75:
    never used`): each of their lines is one, less the header naming the only database."""
    if postgres.is_postgres(db):
        return postgres.quick_check(db.connection())
    rows = [str(row[0]) for row in db.execute_sql("PRAGMA quick_check").fetchall()]
    lines = [line for row in rows for line in row.splitlines()]
    return [line for line in lines if line.strip() and line != "*** in database main ***"]


def open_database(target: str | Path) -> Database:
    """Open a SQLite file, `sqlite:///PATH` or `postgresql://...`; bind the models to it."""
    where = str(target)
    if where.startswith(POSTGRES_URLS):
        return _open_postgres(where)
    return _open_sqlite(where.removeprefix(SQLITE_URL))


def _open_postgres(url: str) -> Database:
    """Connect to PostgreSQL (a box fails fast at start when the server is not there)."""
    from codelace_box.db.pg_driver import open_postgres  # psycopg: on PostgreSQL only

    db = open_postgres(url)
    try:
        db.connect(reuse_if_open=True)
    except PeeweeDatabaseError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = postgres.without_passwords(reason, url)
        # down, restarting, too many connections: may pass (systemd starts it again); a URL
        # libpq cannot read, a wrong password, no such role or database: a configuration error
        # no restart mends (serve exits 78)
        for_good = postgres.url_refused(reason) or postgres.login_refused(exc, reason)
        refused = ConfigError if for_good else NotReady
        raise refused(
            f"database.url {postgres.redacted(url)}: cannot open the database: {reason}"
        ) from None
    _engine[0] = POSTGRES
    database.initialize(db)
    return db


def _open_sqlite(path: str) -> APSWDatabase:
    """Open the SQLite file (db/sqlite_file.py) as the process's database."""
    db = open_sqlite_file(path)
    _engine[0] = SQLITE
    database.initialize(db)
    return db


def schema_target(db: Database) -> Any:
    """What a migration's apply(db) is given: the database, speaking SQLite's DDL."""
    return postgres.PgSchema(db) if postgres.is_postgres(db) else db


def migration_lock(db: Database) -> AbstractContextManager[None]:
    """One process migrates at a time (PostgreSQL: a session advisory lock; SQLite: IMMEDIATE)."""
    if postgres.is_postgres(db):
        return postgres.migration_lock(db)
    return nullcontext()


def close_database() -> None:  # this process's connection, if open
    if database.obj is not None and not database.is_closed():
        database.close()


@contextmanager
def durable() -> Iterator[None]:
    """Commit what runs inside with an fsync (a credit before a 2xx, a key shown once), inside
    an open transaction too (then its COMMIT is the one made durable). PostgreSQL: SET LOCAL
    synchronous_commit. SQLite: the WAL is synced once the outermost transaction committed,
    as synchronous=FULL would (which SQLite refuses to switch on inside a transaction)."""
    if _engine[0] == POSTGRES:
        with write_transaction() as tx:
            tx.execute("SET LOCAL synchronous_commit = on")
            yield
        return
    with write_transaction():
        wal_sync.ask()
        yield


def engine_version() -> str:  # the engine and its library, for `version --verbose`
    return f"sqlite {apsw.sqlite_lib_version()} (apsw {apsw.apsw_version()})"
