"""`db copy`'s id counters: the last id each table handed out, carried from the source to the
target in every direction, so an id given before the copy is never given again after it.

A copy keeps the rows' ids, but a table's counter can be past its largest id: the newest row
was deleted (a removed provider key). SQLite keeps that counter in `sqlite_sequence` for its
AUTOINCREMENT tables (provider_key, migration 21); PostgreSQL in each table's id sequence
(`last_value` once called). Other SQLite tables have no counter: their next id is the largest
plus one, on the source as on the target.
"""

from __future__ import annotations

from collections.abc import Sequence

from peewee import Database

from codelace_box.db import core
from codelace_box.db.postgres import is_postgres

_SEQUENCE_OF = "SELECT pg_get_serial_sequence('\"{table}\"', 'id')"
_LAST_ID = "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {sequence}"
_SET_SEQUENCE = "SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), ?)"
_HAS_SQLITE_SEQUENCE = "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'"
_AUTOINCREMENT_TABLES = (
    "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%AUTOINCREMENT%'"
)


def source_counters(source: Database, tables: Sequence[str]) -> dict[str, int]:
    """The last id each of `tables` handed out on `source`, where it keeps a counter."""
    if is_postgres(source):
        return _sequence_values(source, tables)
    if not source.execute_sql(_HAS_SQLITE_SEQUENCE).fetchone():
        return {}
    rows = source.execute_sql("SELECT name, seq FROM sqlite_sequence").fetchall()
    return {str(name): int(seq) for name, seq in rows if name in tables}


def _sequence_values(source: Database, tables: Sequence[str]) -> dict[str, int]:
    counters: dict[str, int] = {}
    for table in tables:
        (sequence,) = source.execute_sql(_SEQUENCE_OF.format(table=table)).fetchone()
        if sequence:
            (last,) = source.execute_sql(_LAST_ID.format(sequence=sequence)).fetchone()
            counters[table] = int(last)
    return counters


def continue_counters(tx: core.Tx, tables: Sequence[str], counters: dict[str, int]) -> None:
    """Inside the copy's transaction, on the open target: each table's counter continues
    after the source's counter and after every id copied."""
    if core.engine() == core.POSTGRES:
        settable = list(tables)
    else:
        settable = [row[0] for row in tx.execute(_AUTOINCREMENT_TABLES) if row[0] in tables]
    for table in settable:
        (largest,) = tx.execute(f'SELECT COALESCE(MAX("id"), 0) FROM "{table}"').fetchone()
        last = max(counters.get(table, 0), int(largest))
        if last > 0:
            _set_counter(tx, table, last)


def _set_counter(tx: core.Tx, table: str, last: int) -> None:
    if core.engine() == core.POSTGRES:
        tx.execute(_SET_SEQUENCE.format(table=table), (last,))
        return
    tx.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
    tx.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, last))
