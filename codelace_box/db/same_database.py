"""Whether `db copy`'s target is its own source under another name: the same SQLite file (by
another path, a symbolic or a hard link), the same PostgreSQL database (by another URL)."""

from __future__ import annotations

import os
import secrets

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
    """Whether the target's session is in the source's database: an advisory lock (its key
    includes the database) that the source's transaction holds cannot be taken by the target
    there, and can anywhere else. Needs no right a role may lack (pg_stat_activity may be
    closed to PUBLIC on a hardened server; copies between two of its databases were refused)."""
    for _ in range(3):  # a key someone else holds (never in practice): another one
        key = secrets.randbits(63)
        held = source.execute_sql("SELECT pg_try_advisory_xact_lock(%s)", (key,)).fetchone()[0]
        if held:
            found = target.execute_sql("SELECT pg_try_advisory_xact_lock(%s)", (key,))
            return not found.fetchone()[0]
    return False
