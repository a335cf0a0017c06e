"""Reads that see the database at one instant, whatever other processes commit meanwhile
(`db copy`'s source, `doctor`'s checks on a box that is serving), and reads of a table that
grows forever (usage export, the audit log) a page at a time in id order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

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


@contextmanager
def pages_at_one_instant(db: Database) -> Iterator[None]:
    """Where `id_pages` reads of one table must see it at one instant: on PostgreSQL ids come
    from a sequence, so a row whose transaction (another box or worker) took a lower id and
    committed after a page was read would be passed over by the next page (`id > last`) while
    rows committed after it were read: every page is read in one snapshot there. On SQLite
    nothing (each page one short read: a read held open stops the WAL's checkpoints); its one
    writer hands out ids in commit order."""
    if not is_postgres(db):
        yield
        return
    with one_instant(db):
        yield


def id_pages(sql: str, params: Sequence[Any], page: int) -> Iterator[list[Any]]:
    """The rows of `sql` a page of at most `page` rows at a time, each read starting after the
    last id of the page before (as cheap at the millionth row as at the first: no OFFSET, no
    whole table in memory). `sql` reads `... WHERE <id> > ? AND ... ORDER BY <id> LIMIT ?`:
    its first parameter the id to start after, its last the page size, `params` those between;
    each row's first value is its id."""
    from codelace_box.db.core import query_all

    last = 0
    while True:
        rows = query_all(sql, [last, *params, page])
        if not rows:
            return
        last = int(rows[-1][0])
        yield rows
        if len(rows) < page:
            return
