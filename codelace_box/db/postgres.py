"""PostgreSQL, the engine many boxes share (`database.url = "postgresql://..."`): what differs
from SQLite is named here, behind db/core.py's interface; its driver, psycopg, is imported only
when a PostgreSQL database is opened (db/pg_driver.py), so a SQLite box starts without it.

- Parameters: statements are written once with `?` (SQLite's qmark). A `Tx`'s statements go
  to libpq as `$1, $2, ...` (db/pg_pipeline.py), bound on the server and prepared once per
  connection when run again, as apsw caches SQLite's; `pg_sql()` turns the others (peewee's
  session setup, the migrations) into psycopg's `%s`.
- Types: the migrations' SQLite DDL becomes PostgreSQL's (`pg_ddl()`): INTEGER is BIGINT (money
  in nano-USD outgrows 32 bits), an INTEGER primary key a BIGSERIAL, DATETIME a TIMESTAMP,
  BLOB a BYTEA; a table's WITHOUT ROWID (SQLite's layout) is left out. Booleans stay integers
  as on SQLite (a Python bool is sent as 0/1), and an integral NUMERIC (what SUM of BIGINT
  returns) comes back as an int, never a Decimal.
- Durability: a session commits with `synchronous_commit = off` (a box that dies loses nothing
  the server has; like SQLite's synchronous=NORMAL, only a server crash may lose the last
  instants), and `durable()` turns it on for its transaction (a credit before a 2xx, a key
  shown once, a key revoked, an account disabled, a key's or an account's limits changed, a
  portal session signed out).
- Transactions: plain BEGIN (READ COMMITTED); the hot path's writes are single statements or
  lock their rows, so no read-then-write races between boxes.
- Reaching the server: NETWORK_DEFAULTS, unless database.url's query string sets them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from peewee import PeeweeException, PostgresqlDatabase

# a query parameter that holds a password (password, sslpassword): its value, for messages
# libpq's refusals of database.url itself, before any connection (an unknown option, a value
# it cannot read, a malformed URI): a configuration error no restart mends
_URL_REFUSED_RE = re.compile(
    r"^(?:connection is bad: )?(?:invalid (?:URI|integer value|\w+ value|port number|"
    r"percent-encoded)|missing \"=\"|could not match \d+ |.* in URI\b)"
)
# the server's refusals of the login that no restart mends (a wrong password, no such role or
# database): their SQLSTATE where the driver has one (psycopg has none for a failed connect),
# else libpq's FATAL line as the server words it in English
_LOGIN_REFUSED_STATES = frozenset({"28P01", "28000", "3D000"})
_LOGIN_REFUSED_RE = re.compile(
    r'FATAL:\s+(?:password authentication failed for user |(?:role|database) ".*" does not exist)'
)
_QUERY_PASSWORD_RE = re.compile(r"((?:^|&)[^=&]*password=)([^&]*)", re.IGNORECASE)
# libpq's keyword form (`host=h password='a b'`), which `db copy --to` refuses: its password
_KEYWORD_PASSWORD_RE = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s']*)", re.IGNORECASE)
LOCK_TIMEOUT_MS = 10_000  # as SQLite's busy timeout: a lock not had by then is "busy"
# libpq's connection parameters for a server host that stops answering (its packets dropped,
# not refused), each unless database.url's query string (or libpq's environment: a
# PGCONNECT_TIMEOUT) sets it, and tcp_user_timeout only where libpq has it (12 and later).
# Without them a connection attempt waits 130 s (psycopg's default) and an open session
# forever. With them: an attempt fails after connect_timeout; a session whose sent data the
# host does not acknowledge for tcp_user_timeout, or that is idle and whose keepalive probes
# it does not answer for as long, fails too (a 503; the next use opens a new session).
NETWORK_DEFAULTS = {
    "connect_timeout": "5",  # seconds (libpq: at least 2)
    "keepalives": "1",
    "keepalives_idle": "10",  # seconds idle before the first probe
    "keepalives_interval": "5",  # seconds between probes
    "keepalives_count": "3",  # probes unanswered before the session is dead
    "tcp_user_timeout": "15000",  # milliseconds
}
# A serving box's sessions (those that claim a hold owner) end a transaction left idle longer
# than this: a box gone silent in the middle of one (its machine lost, cut off or paused) would
# otherwise keep its locks, the group commit's among them, until the server noticed the dead
# session (its TCP keepalive: two hours by default), and every other box's writes would fail
# their lock timeout meanwhile. A box leaves a transaction idle only while its thread runs
# Python between two statements (nothing awaits inside one). Under LOCK_TIMEOUT_MS, so the
# writes waiting for the silent box's locks get them instead of failing. (A session silenced
# inside a pipelined exchange, before its sync, is "active" to the server, not idle: only the
# keepalives below end it, and only when the box's machine stops answering.)
IDLE_IN_TRANSACTION_MS = 5_000
SERVING_SESSION_SQL = f"SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_MS}ms'"
# The server's half of a session's keepalives, as the box's half is (libpq's parameter: the
# server's setting): without them the server notices a box's machine lost (no FIN, no RST) only
# after the system's keepalive (two hours and more), and until then keeps that box's sessions,
# their locks and its hold owner's claim (its holds are not freed by the other boxes).
SERVER_KEEPALIVES = {
    "keepalives_idle": "tcp_keepalives_idle",  # seconds
    "keepalives_interval": "tcp_keepalives_interval",  # seconds
    "keepalives_count": "tcp_keepalives_count",
    "tcp_user_timeout": "tcp_user_timeout",  # milliseconds (PostgreSQL 12 and later)
}
# Advisory lock ids (pg_advisory_lock takes a bigint): one per thing boxes must do one at a time.
MIGRATION_LOCK = 0x636F_6465_6C61_6365  # "codelace"
# Hold owners: a live process holds the session lock (OWNER_LOCK_CLASS, hashtext(owner)) on each
# of its connections; a box that dies (kill -9, a lost machine) loses its connections and the
# server drops their locks, so any other box sees at once whose holds are left for nothing.
OWNER_LOCK_CLASS = 20_251_202
CLAIM_OWNER_SQL = "SELECT pg_try_advisory_lock(?, hashtext(?))"
GONE_OWNERS_SQL = (
    "SELECT o FROM unnest(?::text[]) o WHERE NOT EXISTS (SELECT 1 FROM pg_locks l "
    "WHERE l.locktype = 'advisory' AND l.classid = ?::bigint::oid AND l.objsubid = 2 "
    "AND l.objid = (hashtext(o)::bigint & 4294967295)::oid AND l.granted)"
)
SERVING_OWNERS_SQL = (  # the owners claimed on this database: one per serving process
    "SELECT COUNT(DISTINCT objid) FROM pg_locks WHERE locktype = 'advisory' AND "
    "classid = ?::bigint::oid AND objsubid = 2 AND granted AND "
    "database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
# One box leads shared work (the upkeep's alerts): its session holds (LEAD_LOCK_CLASS,
# hashtext(role)) while it lives; when its session ends, the next box to try takes the lead.
LEAD_LOCK_CLASS = 20_261_203
LEADS_SQL = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' "
    "AND l.pid = pg_backend_pid() AND l.classid = ?::bigint::oid AND l.objsubid = 2 "
    "AND l.objid = (hashtext(?)::bigint & 4294967295)::oid AND l.granted)"
)
TAKE_LEAD_SQL = "SELECT pg_try_advisory_lock(?, hashtext(?))"
# A lock on a name (an email, an idempotency key) for the rest of the transaction.
XACT_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))"


@lru_cache(maxsize=1024)
def pg_sql(sql: str) -> str:
    """A statement written with `?` parameters, in psycopg's `%s` style."""
    return sql.replace("%", "%%").replace("?", "%s")


_DDL_RULES = (
    (re.compile(r"\bINTEGER NOT NULL PRIMARY KEY\b"), "BIGSERIAL NOT NULL PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bDATETIME\b"), "TIMESTAMP"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\)\s*WITHOUT ROWID$"), ")"),  # SQLite's table layout; PostgreSQL has none
)


def pg_ddl(sql: str) -> str:
    """A schema statement written for SQLite, in PostgreSQL's types (and `%s` parameters)."""
    for pattern, replacement in _DDL_RULES:
        sql = pattern.sub(replacement, sql)
    return pg_sql(sql)


def is_postgres(db: object) -> bool:
    """Whether `db` is a PostgreSQL database (db/pg_driver.py's, or none at all yet)."""
    return isinstance(db, PostgresqlDatabase)


def is_busy(exc: BaseException) -> bool:
    """A lock that could not be had, a deadlock or a serialization failure: retry later."""
    return _raised(exc, "LockNotAvailable", "DeadlockDetected", "SerializationFailure")


def is_unavailable(exc: BaseException) -> bool:
    """The session failed, not the statement: the server dropped it (a restart, a failover,
    an idle cut) or could not be reached. The next use opens a new session (pg_driver)."""
    return _raised(exc, "OperationalError") and not is_busy(exc)


def is_read_only(exc: BaseException) -> bool:
    """The server takes no writes: a hot standby (a failover that left database.url naming the
    old primary) or `default_transaction_read_only` (a managed service's answer to a full
    disk), as a SQLite file that cannot be written (sqlite_file.storage_failed)."""
    return _raised(exc, "ReadOnlySqlTransaction")


def unavailable_words(exc: BaseException, url: str | None) -> str:
    """What an operator is told of a session lost or a server not reached (`is_unavailable`):
    where (host and port of `url`, never its password) and the driver's first line, its
    passwords masked."""
    return f"the database is unavailable ({unavailable_reason(exc, url)})"


def unavailable_reason(exc: BaseException, url: str | None) -> str:
    """`unavailable_words`' parenthesis: 'PostgreSQL at host:port: ' and the driver's first
    line ('... FATAL: sorry, too many clients already'), its passwords masked."""
    said = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = without_passwords(said[0], url) if said and url else (said[0] if said else "")
    where = f" at {server_address(url)}" if url else ""
    return f"PostgreSQL{where}: {first or type(exc).__name__}"


def server_address(url: str) -> str:
    """`host:port` of a PostgreSQL URL (its default port 5432 when none is written), or "the
    server database.url names" for a URL that names none (a socket folder in the query)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(redacted(url))
        host, port = parts.hostname, parts.port or 5432
    except ValueError:
        host, port = None, 5432
    return f"{host}:{port}" if host else "the server database.url names"


def missing_privilege(exc: BaseException) -> str | None:
    """What a role that may not do what a statement asked (PostgreSQL 15 and later give the
    `public` schema's CREATE to the database's owner only, whatever `GRANT ALL ON DATABASE`
    gave) should be granted, in one line with the server's own words; None for other errors."""
    if not _raised(exc, "InsufficientPrivilege"):
        return None
    said = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return (
        f"the database role may not do this: {said}; make it the database's owner (ALTER "
        "DATABASE name OWNER TO role) or GRANT CREATE ON SCHEMA public TO role"
    )


def is_conflict(exc: BaseException) -> bool:
    """A deadlock or a serialization failure: the server aborted the transaction for another's
    sake; it may run again as it was."""
    return _raised(exc, "DeadlockDetected", "SerializationFailure")


def _raised(exc: BaseException, *names: str) -> bool:
    """`exc` (or its cause, or the driver's error that peewee wrapped in its own, however
    deep: a session that could not be opened for a query is wrapped twice, by the connect and
    by the query) is one of psycopg's errors of these names (none can have been raised while
    psycopg is not imported)."""
    if "psycopg" not in sys.modules:
        return False
    from psycopg import errors as pg_errors

    kinds = tuple(getattr(pg_errors, name) for name in names)
    seen: list[BaseException | None] = [exc, exc.__cause__]
    inner: BaseException | None = exc
    while isinstance(inner, PeeweeException):
        inner = getattr(inner, "orig", None)
        seen.append(inner)
    return any(isinstance(e, kinds) for e in seen)


@contextmanager
def migration_lock(db: Any) -> Iterator[None]:
    """A session advisory lock: one box migrates at a time. Its turn is waited for whatever
    the lock timeout (a migration over months of usage rows takes longer: the boxes started
    with it failed to start); a migrating process that dies frees it with its session."""
    db.execute_sql("SET lock_timeout = 0")
    try:
        db.execute_sql("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    finally:
        db.execute_sql(f"SET lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
    try:
        yield
    finally:
        db.execute_sql("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


class PgSchema:
    """The database as a migration sees it on PostgreSQL: its SQLite DDL in PostgreSQL's types."""

    def __init__(self, db: Any) -> None:
        self._db = db

    def execute_sql(self, sql: str, params: Any = ()) -> Any:
        return self._db.execute_sql(pg_ddl(sql), tuple(params) or None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def driver_version() -> str:
    """The engine and its driver, for `version --verbose`: psycopg's version and which of its
    implementations runs ("binary": the C one with its own libpq, as the executable has it)."""
    import psycopg

    return f"postgresql (psycopg {psycopg.__version__}, {psycopg.pq.__impl__} implementation)"


def _password_span(url: str) -> tuple[int, int] | None:
    """Where the password before the host is, as libpq reads a URI: the credentials end at the
    first @ before any /, the password after their first colon. (urlsplit ends the host part at
    a # or ? too, so a password holding one, which libpq takes written raw, went unseen.) A
    password holding a raw / or @ is all of it too, though libpq ends the host at the / or the
    credentials at the first @: up to the last @ of the host part, after a / if none is before."""
    start = url.find("://") + 3
    if start < 3:
        return None
    slash = url.find("/", start)
    at = url.find("@", start, slash if slash >= 0 else len(url))
    if at < 0 and slash >= 0:
        at = url.find("@", slash)
    if at >= 0:
        slash = url.find("/", at)
        at = url.rfind("@", at, slash if slash >= 0 else len(url))
    colon = url.find(":", start, at) if at >= 0 else -1
    return (colon + 1, at) if colon >= 0 else None


def _query_start(url: str) -> int:
    """Where the query string begins (after the credentials, which may hold a ?), else -1."""
    span = _password_span(url)
    return url.find("?", span[1] if span else 0)


def redacted(url: str) -> str:
    """The URL without its passwords, for messages: the one before the host, and any given as
    a query parameter (libpq takes `?password=...`, and `sslpassword`, there too), each to
    where libpq ends it (a # in one is part of it). A URL with none is returned as written;
    a text that is no URL (libpq's `key=value` form) with its password masked."""
    if "://" not in url:
        return _KEYWORD_PASSWORD_RE.sub(r"\1***", url)
    span, query_at = _password_span(url), _query_start(url)
    if query_at >= 0:
        url = url[:query_at] + _QUERY_PASSWORD_RE.sub(r"\1***", url[query_at:])
    return url if span is None else url[: span[0]] + "***" + url[span[1] :]


def url_refused(reason: str) -> bool:
    """Whether the driver's `reason` for not connecting is libpq refusing the URL as written
    (serve's exit 78) rather than the server down or refusing (which may pass: exit 1)."""
    return _URL_REFUSED_RE.match(reason) is not None


def login_refused(exc: BaseException, reason: str) -> bool:
    """Whether the server refused the login for good (serve's exit 78): a wrong password, a
    role or a database that does not exist; not when it is down, starting up (57P03) or has
    too many connections (53300), which may pass (exit 1). `exc`: the driver's error, peewee's
    wrapping of it or psycopg's own; `reason`: its first line."""
    state = _sqlstate(exc)
    if state is not None:
        return state in _LOGIN_REFUSED_STATES
    return _LOGIN_REFUSED_RE.search(reason) is not None


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of `exc` or of the driver error it wraps (peewee keeps it as `orig`, and
    as the context of its raise), None when none has one."""
    for error in (exc, getattr(exc, "orig", None), exc.__cause__, exc.__context__):
        state = getattr(error, "sqlstate", None) or getattr(
            getattr(error, "diag", None), "sqlstate", None
        )
        if isinstance(state, str) and state:
            return state
    return None


def without_passwords(text: str, url: str) -> str:
    """`text` (a driver's error about `url`) with the URL's passwords masked: libpq quotes a
    value it cannot parse, such as a password with a % that is no escape."""
    span, query_at = _password_span(url), _query_start(url)
    secrets = [url[span[0] : span[1]]] if span else []
    if query_at >= 0:
        secrets += [m.group(2) for m in _QUERY_PASSWORD_RE.finditer(url[query_at + 1 :])]
    for secret in sorted(filter(None, set(secrets)), key=len, reverse=True):
        text = text.replace(secret, "***")
    for piece in filter(None, re.split("[@/]", secrets[0] if span else "")):
        for quote in "'\"":  # a host or a database name libpq made of a password's part
            text = text.replace(f"{quote}{piece}@", f"{quote}***@")
    return text


def quick_check(conn: Any) -> list[str]:
    """The equivalent of SQLite's quick_check: the server answers and the schema is readable
    (the server checks its own pages; `pg_amcheck` goes deeper)."""
    conn.execute("SELECT COUNT(*) FROM pg_catalog.pg_tables").fetchone()
    return ["ok"]


def minute_sql(column: str) -> str:
    """SQL for a timestamp's minute as text, 'YYYY-MM-DD HH:MM'."""
    return f"to_char({column}, 'YYYY-MM-DD HH24:MI')"


def day_sql(column: str) -> str:
    """SQL for a timestamp's day as text, 'YYYY-MM-DD'."""
    return f"to_char({column}, 'YYYY-MM-DD')"


def contains_sql(column: str) -> str:
    """SQL true when the lower-cased text of `column` contains the next `?` parameter."""
    return f"strpos(lower(COALESCE({column}, '')), ?) > 0"
