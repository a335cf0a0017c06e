"""A statement's query plan on the test's engine, as one string: SQLite's EXPLAIN QUERY PLAN,
or PostgreSQL's EXPLAIN with sequential scans off (a test's few rows would be scanned, whatever
the indexes: which index the planner can use is what the index tests check)."""

from __future__ import annotations

from codelace_box.db.core import POSTGRES, connection, engine, query_all


def query_plan(sql: str, params: tuple[object, ...] | list[object]) -> str:
    """The plan of `sql` (with `?` marks) on the open test database."""
    if engine() == POSTGRES:
        connection().execute("SET enable_seqscan = off")
        try:
            return " ".join(str(row[0]) for row in query_all("EXPLAIN " + sql, params))
        finally:
            connection().execute("RESET enable_seqscan")
    return " ".join(str(row[-1]) for row in query_all("EXPLAIN QUERY PLAN " + sql, params))
