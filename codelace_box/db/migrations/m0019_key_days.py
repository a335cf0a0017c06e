"""Migration 19: usage per API key per day (UTC), backfilled from the usage rows there are.

From here on the settlement transaction keeps it with the other totals (db/totals.py), and
`usage report --by key` reads its whole days from it instead of every usage row of the window
(as `--by user|model` read account_day_usage and the day rollups). A request with no key (the
portal's) counts under key 0. What an account's days (account_day_usage) hold beyond its usage
rows (rows retention deleted before this migration, whose keys are not known any more) is
counted under key -1, so that each account's key days add up to its days, which `doctor`
checks. On SQLite the table is WITHOUT ROWID, as account_day_usage.
"""

from __future__ import annotations

from typing import Any

from codelace_box.db.dialect import day_sql
from codelace_box.db.migrations.m0009_usage_totals import TALLY, TOTAL_COLUMNS

NAME = "usage per key per day"

SCHEMA = 'CREATE TABLE "key_day_usage" ("api_key_id" INTEGER NOT NULL, "day" VARCHAR(255) NOT NULL, "user_id" INTEGER NOT NULL, "requests" INTEGER NOT NULL, "errors" INTEGER NOT NULL, "input_tokens" INTEGER NOT NULL, "output_tokens" INTEGER NOT NULL, "cache_read_tokens" INTEGER NOT NULL, "cache_write_tokens" INTEGER NOT NULL, "cost_nanos" INTEGER NOT NULL, PRIMARY KEY ("api_key_id", "day", "user_id"), FOREIGN KEY ("user_id") REFERENCES "user" ("id") ON DELETE CASCADE) WITHOUT ROWID'  # noqa: E501

_FIGURES = TOTAL_COLUMNS.replace('"', "").split(", ")
_KEYED = ", ".join(f"SUM({c}) AS {c}" for c in _FIGURES)
_MISSING = ", ".join(f"a.{c} - COALESCE(k.{c}, 0)" for c in _FIGURES)
_DIFFERS = " OR ".join(f"a.{c} != COALESCE(k.{c}, 0)" for c in _FIGURES)


def backfill() -> list[str]:
    """The statements that fill the table (the day SQL is the open engine's): the rows per
    key and day, then what each account's days hold beyond its rows, under key -1."""
    day = day_sql("created_at")
    return [
        f'INSERT INTO "key_day_usage" ("api_key_id", "day", "user_id", {TOTAL_COLUMNS}) '
        f"SELECT COALESCE(api_key_id, 0), {day}, user_id, {TALLY} FROM usage_record "
        f"GROUP BY COALESCE(api_key_id, 0), {day}, user_id",
        f'INSERT INTO "key_day_usage" ("api_key_id", "day", "user_id", {TOTAL_COLUMNS}) '
        f"SELECT -1, a.day, a.user_id, {_MISSING} FROM account_day_usage a "
        f"LEFT JOIN (SELECT user_id, day, {_KEYED} FROM key_day_usage GROUP BY user_id, day) k "
        f"ON k.user_id = a.user_id AND k.day = a.day WHERE {_DIFFERS}",
    ]


def apply(db: Any) -> None:
    """Create the per-day totals of each key and fill them."""
    db.execute_sql(SCHEMA)
    for statement in backfill():
        db.execute_sql(statement)
