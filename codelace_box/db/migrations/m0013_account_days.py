"""Migration 13: usage per account per day (UTC), backfilled from the usage rows there are.

From here on the settlement transaction keeps it with the other totals (db/totals.py): the
portal's daily spend and month-to-date read at most 31 of these rows instead of summing the
account's usage rows of the month (2-4.7 s on the database thread for an account with a
million of them). On SQLite the table is WITHOUT ROWID: its primary key is the table, so a
settlement writes one page for it, not two.
"""

from __future__ import annotations

from typing import Any

from codelace_box.db.dialect import day_sql
from codelace_box.db.migrations.m0009_usage_totals import TALLY, TOTAL_COLUMNS

NAME = "usage per account per day"

SCHEMA = 'CREATE TABLE "account_day_usage" ("user_id" INTEGER NOT NULL, "day" VARCHAR(255) NOT NULL, "requests" INTEGER NOT NULL, "errors" INTEGER NOT NULL, "input_tokens" INTEGER NOT NULL, "output_tokens" INTEGER NOT NULL, "cache_read_tokens" INTEGER NOT NULL, "cache_write_tokens" INTEGER NOT NULL, "cost_nanos" INTEGER NOT NULL, PRIMARY KEY ("user_id", "day"), FOREIGN KEY ("user_id") REFERENCES "user" ("id") ON DELETE CASCADE) WITHOUT ROWID'  # noqa: E501


def backfill() -> str:
    """The statement that fills the table (the day SQL is the open engine's)."""
    day = day_sql("created_at")
    return (
        f'INSERT INTO "account_day_usage" ("user_id", "day", {TOTAL_COLUMNS}) '
        f"SELECT user_id, {day}, {TALLY} FROM usage_record GROUP BY user_id, {day}"
    )


def apply(db: Any) -> None:
    """Create the per-day totals of each account and fill them from the usage rows."""
    db.execute_sql(SCHEMA)
    db.execute_sql(backfill())
