"""Reads that see the database at one instant, whatever other processes commit meanwhile
(`db copy`'s source, `doctor`'s checks on a box that is serving)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from peewee import Database

from codelace_box.db.postgres import is_postgres


@contextmanager
def one_instant(db: Database) -> Iterator[None]:
    """Every read inside sees `db` as it was at one instant: a read-only REPEATABLE READ
    transaction on PostgreSQL, a deferred one on SQLite (its snapshot is taken at the first
    read). Read table by table without it, a settlement committed between two reads looked
    like a mismatch (and a copy's balances did not match their ledgers)."""
    db.execute_sql(
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY" if is_postgres(db) else "BEGIN"
    )
    try:
        yield
    finally:
        db.execute_sql("ROLLBACK")
