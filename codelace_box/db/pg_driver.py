"""PostgreSQL's driver, psycopg 3, under peewee: the database and connections db/core.py opens on
PostgreSQL, imported only then (a SQLite box never loads psycopg).

- Types: a Python bool is sent as 0/1 (booleans are integers on both engines), and an integral
  NUMERIC (what SUM of BIGINT returns) comes back as an int, never a Decimal.
- Sessions: set up as db/postgres.py describes (commit, time zone, lock timeout, the server's
  half of the keepalives; a serving process's: its idle-in-transaction timeout and the owner),
  opened with its NETWORK_DEFAULTS (timeouts, keepalives) where the URL leaves them out;
  statements are prepared by db/pg_pipeline.py, not by psycopg.
- peewee is imported without psycopg (codelace_box/__init__.py), so its adapter is bound to
  psycopg here.
"""

from __future__ import annotations

import os
import select
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from functools import lru_cache
from typing import Any

import psycopg
from peewee import PostgresqlDatabase, Psycopg3Adapter
from psycopg.adapt import Dumper, Loader
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.types.json import Json, Jsonb

from codelace_box.db.pg_pipeline import Answer, Pipeline, Prepared
from codelace_box.db.postgres import (
    CLAIM_OWNER_SQL,
    LOCK_TIMEOUT_MS,
    NETWORK_DEFAULTS,
    OWNER_LOCK_CLASS,
    SERVER_KEEPALIVES,
    SERVING_SESSION_SQL,
    pg_sql,
)

CANCEL_TIMEOUT_SEC = 5.0  # waiting for the server to take a cancel request (psycopg's own)


class _BoolAsInt(Dumper):
    """True/False as 1/0: boolean columns are integers on both engines."""

    oid = psycopg.adapters.types["int8"].oid

    def dump(self, obj: bool) -> bytes:
        return b"1" if obj else b"0"


class _IntegralNumeric(Loader):
    """NUMERIC (SUM of a BIGINT column) as an int when it has no fraction."""

    def load(self, data: Any) -> Any:
        text = bytes(data).decode()
        if "." in text or text in ("NaN", "Infinity", "-Infinity"):
            from decimal import Decimal

            return Decimal(text)
        return int(text)


class _Adapter(Psycopg3Adapter):
    """peewee's psycopg 3 adapter, bound to psycopg here: the package imports peewee without
    it (codelace_box/__init__.py), so peewee's own names for psycopg are None."""

    txn_idle = TransactionStatus.IDLE
    txn_inerror = TransactionStatus.INERROR
    txn_unknown = TransactionStatus.UNKNOWN

    def __init__(self) -> None:
        super().__init__()
        self.json_type, self.jsonb_type = Json, Jsonb

    def check_driver(self) -> None:
        """psycopg is imported above."""

    def get_binary_type(self) -> Any:
        return psycopg.Binary

    def connect(self, db: Any, **params: Any) -> Any:
        if db._encoding:
            params.setdefault("client_encoding", db._encoding)
        url = db.database.startswith(("postgresql://", "postgres://"))  # libpq takes both
        params.setdefault("conninfo" if url else "dbname", db.database)
        # UTF-8 whatever the database's encoding: on a SQL_ASCII one (initdb's under the C
        # locale) psycopg read text as bytes (table names too: the schema was not found
        # again) and refused to send any beyond ASCII
        params["client_encoding"] = "UTF8"
        return psycopg.connect(**with_network_defaults(params))

    def server_side_cursor(self, conn: Any) -> Any:
        in_transaction = self.txn_status(conn) == TransactionStatus.INTRANS
        return conn.cursor(name=str(uuid.uuid1()), withhold=not in_transaction)


def with_network_defaults(params: dict[str, Any]) -> dict[str, Any]:
    """psycopg.connect's arguments with postgres.NETWORK_DEFAULTS added: each one that neither
    they (nor their conninfo URL's query string) nor libpq's environment set, if libpq has it."""
    given = conninfo_to_dict(params.get("conninfo", "")) | params
    known = _libpq_parameters()
    added = {
        name: value
        for name, value in NETWORK_DEFAULTS.items()
        if name in known and name not in given and not (known[name] and known[name] in os.environ)
    }
    return added | params


@lru_cache(maxsize=1)
def _libpq_parameters() -> dict[str, str]:
    """The connection parameters this libpq has, each with its environment variable (or '')."""
    return {
        option.keyword.decode(): option.envvar.decode() if option.envvar else ""
        for option in psycopg.pq.Conninfo.get_defaults()
    }


class BoxPostgresqlDatabase(PostgresqlDatabase):
    """peewee's PostgreSQL database on psycopg 3, its sessions set up as the box needs (and,
    once `owner` is set, each session claiming it: see OWNER_LOCK_CLASS)."""

    psycopg2_adapter = psycopg3_adapter = _Adapter  # either way peewee picks: psycopg 3, bound
    owner: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # peewee opens and closes every thread's session under one lock of the database; the
        # sessions are each thread's own (its state is per thread), so none is needed. With
        # it, a host that does not answer held every thread opening a session (the event
        # loop's too) for the connect timeouts of all the others before it.
        self._lock = nullcontext()

    def _connect(self) -> Any:
        conn = super()._connect()  # type: ignore[misc]
        conn.adapters.register_dumper(bool, _BoolAsInt)
        conn.adapters.register_loader("numeric", _IntegralNumeric)
        # The box's statements are prepared by db/pg_pipeline.py. psycopg's own preparing is
        # off: after any ROLLBACK it would DEALLOCATE ALL of the session, those with its own.
        conn.prepare_threshold = None
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT_MS}ms'")  # then is_busy: a 503
        _set_server_keepalives(conn)
        if self.owner is not None:  # a serving process's session
            conn.execute(SERVING_SESSION_SQL)
            conn.execute(pg_sql(CLAIM_OWNER_SQL), (OWNER_LOCK_CLASS, self.owner))
        return conn

    def connection(self) -> Any:
        """This thread's session; a new one when the server dropped it (a restart, a failover,
        a proxy's idle cut). psycopg marks a session closed once an operation met its loss:
        that operation fails (a 503, `postgres.is_unavailable`), the next one reconnects. Not
        inside a transaction: it fails and ends first, on the old session."""
        conn = super().connection()
        if conn.closed and not self.in_transaction():
            self.close()  # the dead session (psycopg closes it without a word to the server)
            conn = super().connection()
        return conn

    def close_if_ended(self) -> None:
        """Close this thread's session, when not in a transaction, if the server ended it while
        it was idle (a restart, a failover, `pg_terminate_backend`: its last words, then EOF; a
        proxy's idle cut: EOF), so that the work about to run opens a new one rather than fail
        with a 503 on it (a change is never run twice). Seen without a round trip: between two
        statements the server sends nothing unasked but that (or, rarely, a notice: then a
        new session costs a connect). A session whose host went silent is not seen here."""
        if self.is_closed() or self.in_transaction():
            return
        conn = super().connection()  # open: the session as it is
        if conn.closed or _bytes_waiting(conn.fileno()):
            self.close()  # (ended: nothing is lost; a live one the server ends cleanly)

    def cursor(self, named_cursor: Any = None) -> Any:
        """peewee's cursor, refused while the connection runs a group commit's pipeline (its
        cursor would read the pipeline's answers as its own: a write uses its `Tx`)."""
        if not self.is_closed() and self.connection().pgconn.pipeline_status:
            raise RuntimeError("inside a group commit, statements go through its Tx only")
        return super().cursor(named_cursor)


def _bytes_waiting(fd: int) -> bool:
    """Whether the socket `fd` has something to read (or its end), now, without waiting."""
    if hasattr(select, "poll"):  # any descriptor number (select() only those below 1024)
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])  # Windows: sockets, any number


def _set_server_keepalives(conn: Any) -> None:
    """The server's keepalives of this session as its own (postgres.SERVER_KEEPALIVES), in one
    statement; none when the session has them off. (On a Unix socket the server ignores them.)"""
    given = conn.info.get_parameters()
    if given.get("keepalives") == "0":
        return
    values = [
        (server, given[client])
        for client, server in SERVER_KEEPALIVES.items()
        if given.get(client, "").isdigit()
        and (server != "tcp_user_timeout" or conn.info.server_version >= 120000)
    ]
    if values:
        calls = ", ".join("set_config(%s, %s, false)" for _ in values)
        conn.execute(f"SELECT {calls}", [part for pair in values for part in pair])


def open_postgres(url: str) -> BoxPostgresqlDatabase:
    """A peewee database for this URL (not yet connected)."""
    return BoxPostgresqlDatabase(url, prefer_psycopg3=True)


class PgTx:
    """A psycopg connection as the `Tx` protocol: `?` statements, and the rows they changed.

    `pipelined()` (the group commit's batch) queues statements without waiting for each answer
    (db/pg_pipeline.py: libpq's pipeline mode): a statement whose rows are read (`fetchone`,
    `fetchall`) or whose count is asked (`changes()`) waits for its answer; the others go with
    the next one that waits, or with `sync()`. A server error comes back with the first answer
    waited for after it (db/batch.py sorts out whose it is), and the server skips what follows
    it until then. Outside a batch a statement with parameters runs as a pipeline of one (one
    round trip, prepared when run again, none of psycopg's cursor machinery: the key lookup of
    every request is one); one without goes through psycopg as it is.
    """

    __slots__ = ("_changes", "_conn", "_last", "_pipeline", "_prepared", "_single")

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._changes = 0
        self._last: Answer | None = None  # its count not yet read (pipelined)
        self._pipeline: Pipeline | None = None
        self._prepared = Prepared()  # this connection's, kept from batch to batch
        self._single: Pipeline | None = None

    def execute(self, sql: str, params: Any = ()) -> Any:
        pipeline = self._pipeline
        if pipeline is not None:
            self._last = answer = pipeline.send(sql, params)
            return answer
        if params:  # a pipeline of one: prepared once, one round trip, none of psycopg's Python
            try:
                with self._one() as one:
                    answer = one.send(sql, params)
            except BaseException:
                self._close_if_out_of_step()
                raise
            self._changes = answer.rowcount
            return answer
        cursor = self._conn.execute(sql)  # psycopg reads the text as it is (% stays one)
        self._changes = cursor.rowcount
        return cursor

    def _one(self) -> Pipeline:
        """The pipeline a statement of its own runs in (made once, entered each time)."""
        if self._single is None:
            self._single = Pipeline(self._conn, self._prepared)
        return self._single

    def changes(self) -> int:
        last = self._last
        if last is not None:
            self._changes, self._last = last.rowcount, None
        return self._changes

    def sync(self) -> None:
        """Pipelined: send what is queued and wait for every answer (raises the first error
        among them); otherwise nothing to do."""
        if self._pipeline is not None:
            self._pipeline.sync()

    @contextmanager
    def pipelined(self) -> Iterator[None]:
        """Pipeline mode for what runs inside (a batch); every answer is in on return."""
        try:
            with Pipeline(self._conn, self._prepared) as pipeline:
                self._pipeline = pipeline
                yield
        finally:
            self._pipeline, self._last = None, None
            self._close_if_out_of_step()
            if self.in_transaction():  # an error: its ROLLBACK, queued behind it, was skipped
                self._conn.execute("ROLLBACK")

    def _close_if_out_of_step(self) -> None:
        """Close the session if it was left out of step with the server: a statement's answers
        unread (a wait that Ctrl-C interrupted leaves the connection in pipeline mode, or a
        statement running). No ROLLBACK can be sent on it; the server rolls back the open
        transaction of a session that ends. What runs is cancelled first (as psycopg does on
        Ctrl-C), so that its locks go at once; the next use opens a new session
        (BoxPostgresqlDatabase.connection), and the write transaction has nothing to roll back."""
        conn = self._conn
        if conn.closed or not (
            conn.pgconn.pipeline_status
            or conn.pgconn.transaction_status == TransactionStatus.ACTIVE
        ):
            return
        with suppress(Exception):  # not cancelled: closing ends it too, once the server reads on
            conn.cancel_safe(timeout=CANCEL_TIMEOUT_SEC)
        conn.close()

    def in_transaction(self) -> bool:
        if self._pipeline is not None and self._pipeline.sent:  # its status is not known yet
            return True
        if self._conn.closed:  # closed mid-statement: the server rolled its transaction back
            return False
        return self._conn.info.transaction_status != TransactionStatus.IDLE

    def rollback_if_open(self) -> None:
        if self.in_transaction():
            self._conn.execute("ROLLBACK")
