"""What a database error means for the request that met it: SQLite's lock or PostgreSQL's
(`is_busy`), a lost session or a disk that cannot be written (`is_unavailable`), a transaction
to run again (`conflict`), and the 503 each becomes (`database_unavailable`)."""

from __future__ import annotations

import apsw
from peewee import OperationalError as PeeweeOperationalError

from codelace_box.db import postgres
from codelace_box.db.sqlite_file import BUSY_TIMEOUT_SEC, storage_failed, write_failure_where
from codelace_box.errors import CodelaceError, ServiceUnavailable

LOCKED = (
    f"the database is locked by another process (waited {BUSY_TIMEOUT_SEC:g} s for its "
    "write to end; an open sqlite3 shell transaction?): nothing was done; try again"
)
PG_LOCKED = (  # PostgreSQL's: a lock on a row or a name, held by another session
    f"the database is locked by another session (waited {postgres.LOCK_TIMEOUT_MS / 1000:g} s "
    "for a lock it holds: another box's transaction, or a psql session's left open? "
    "pg_stat_activity shows them): nothing was done; try again"
)


def operator_words(exc: BaseException, url: str | None = None) -> str | None:
    """What an operator's command (the CLI, the dashboard) says of a database failure it met:
    a lock another process holds (rolled back), a database that could not be written (a
    full disk: its own words, not "unexpected ...", and for SQLite database.path and what
    helps), PostgreSQL unavailable (where: `url`'s
    host and port, never its password), or a PostgreSQL role lacking a privilege (what to
    grant); None for any other failure."""
    if is_busy(exc):
        return PG_LOCKED if postgres.is_busy(exc) else LOCKED
    if storage_failed(exc) or postgres.is_read_only(exc):  # SQLite's: which file, what helps
        return f"the database could not be written: {written_words(exc)}{write_failure_where(exc)}"
    if postgres.is_unavailable(exc):
        return postgres.unavailable_words(exc, url)
    if damaged_file(exc):
        return (
            f"the database file is damaged ({written_words(exc)}): `codelace-box doctor` checks "
            'it; restore a backup (README "Restore")'
        )
    return postgres.missing_privilege(exc)


def damaged_file(exc: BaseException) -> bool:
    """SQLite met a page of its file it cannot read (apsw's error, or peewee's around it)."""
    damaged = (apsw.CorruptError, apsw.NotADBError)
    return isinstance(exc, damaged) or isinstance(exc.__context__, damaged)


def is_busy(exc: BaseException) -> bool:
    """SQLite's 'database is locked' (apsw, peewee); PostgreSQL's lock, deadlock, serialization."""
    return (
        isinstance(exc, apsw.BusyError)
        or (isinstance(exc, PeeweeOperationalError) and "locked" in str(exc))
        or postgres.is_busy(exc)
    )


def is_unavailable(exc: BaseException) -> bool:
    """PostgreSQL's session was lost (it reconnects at the next use) or its server takes no
    writes (a standby, read-only), or SQLite cannot write its file (a full or read-only disk):
    retry shortly."""
    return postgres.is_unavailable(exc) or storage_failed(exc) or postgres.is_read_only(exc)


def written_words(exc: BaseException) -> str:
    """The first line of why a database could not be written ('database or disk is full',
    'cannot execute INSERT in a read-only transaction')."""
    said = str(exc).strip().splitlines()
    return said[0] if said else type(exc).__name__


def traceback_of(exc: BaseException) -> BaseException | None:
    """A log line's exc_info: a bug's traceback; none for our errors or a database's trouble."""
    return None if isinstance(exc, CodelaceError) or is_unavailable(exc) or is_busy(exc) else exc


def database_unavailable(exc: BaseException) -> ServiceUnavailable:
    """The 503 of a database that stayed locked (`is_busy`) or lost its session
    (`is_unavailable`): the client retries, nothing of the request was done."""
    if is_busy(exc):
        return ServiceUnavailable("the database is busy; retry shortly", code="database_busy")
    return unavailable_error()


def unavailable_error() -> ServiceUnavailable:
    """The 503 of a database that cannot be reached (or lost the session)."""
    return ServiceUnavailable(
        "the database is unavailable; retry shortly", code="database_unavailable"
    )


def conflict(exc: BaseException) -> bool:
    """PostgreSQL ended the transaction for another's (deadlock, serialization): run it again."""
    return postgres.is_conflict(exc)
