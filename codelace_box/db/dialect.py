"""SQL fragments that differ between the engines (the open database's): a stored timestamp's
minute and day, a case-blind substring match."""

from __future__ import annotations

from codelace_box.db import postgres
from codelace_box.db.core import POSTGRES, engine


def minute_sql(column: str) -> str:
    """SQL for the minute of a stored timestamp, 'YYYY-MM-DD HH:MM' (the start of its text)."""
    if engine() == POSTGRES:
        return postgres.minute_sql(column)
    return f"substr({column}, 1, 16)"


def day_sql(column: str) -> str:
    """SQL for the day of a stored timestamp, 'YYYY-MM-DD' (the start of its text)."""
    if engine() == POSTGRES:
        return postgres.day_sql(column)
    return f"substr({column}, 1, 10)"


def contains_sql(column: str) -> str:
    """SQL: lower-cased `column` (NULL: '') contains the next `?` (lower-cased by the caller)."""
    if engine() == POSTGRES:
        return postgres.contains_sql(column)
    return f"instr(lower(COALESCE({column}, '')), ?) > 0"
