"""Whether `db copy`'s target is its own source under another name: the same SQLite file (by
another path, a symbolic or a hard link), the same PostgreSQL database (by another URL)."""

from __future__ import annotations

import os

from peewee import Database

from codelace_box.db.postgres import is_postgres
from codelace_box.errors import CodelaceError

SELF_COPY = (
    "--to names the database being copied (its own source, by another name): copy into "
    "another, empty database"
)


def refuse_the_source_itself(source: Database, target: Database) -> None:
    """CodelaceError when `target` is `source`: a copy into itself 'copied 0 rows' from an
    empty source, and was refused as a target 'not empty' otherwise, saying nothing of why."""
    if is_postgres(source) != is_postgres(target):
        return
    same = _same_postgres(source, target) if is_postgres(source) else _same_file(source, target)
    if same:
        raise CodelaceError(SELF_COPY)


def _same_file(source: Database, target: Database) -> bool:
    """Whether the two SQLite connections have one file open (samefile: links too)."""
    paths = [_main_file(db) for db in (source, target)]
    if not all(paths):
        return False
    try:
        return os.path.samefile(paths[0], paths[1])
    except OSError:
        return False


def _main_file(db: Database) -> str:
    """The file of a SQLite connection's main database ('' in memory)."""
    for _seq, name, path in db.execute_sql("PRAGMA database_list").fetchall():
        if name == "main":
            return str(path or "")
    return ""


def _same_postgres(source: Database, target: Database) -> bool:
    """Whether the target's server runs the source's session in the target's database: the
    same server (started at the same instant) and the source's backend among its sessions."""
    pid, started = source.execute_sql(
        "SELECT pg_backend_pid(), pg_postmaster_start_time()"
    ).fetchone()
    found = target.execute_sql(
        "SELECT pg_postmaster_start_time() = %s AND EXISTS (SELECT 1 FROM pg_stat_activity "
        "WHERE pid = %s AND datname = current_database())",
        (started, pid),
    ).fetchone()
    return bool(found[0])
