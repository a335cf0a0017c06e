"""Migration 22: an account's days are the sums of its keys' days; account_day_usage goes.

Since migration 19 the settlement kept each day twice, per account (account_day_usage) and
per key (key_day_usage, no key under key 0, what retention took before 19 under key -1), and
`doctor` checked that the keys' days add up to the account's. The readers (the portal's spend,
`usage report --by user`, `doctor`) now sum the key days, and the settlement writes one upsert
less a batch. So that one account's days in a window are one range of rows, the key days are
kept in the order (user_id, day, api_key_id) (their primary key; it was (api_key_id, day,
user_id), which made that read a scan of every key's days). What an account's day held beyond
its keys' days (only a database `doctor` already found wrong) is added under key -1, so that
every figure the account showed stays as it was.
"""

from __future__ import annotations

from typing import Any

from codelace_box.db.migrations.m0009_usage_totals import TOTAL_COLUMNS
from codelace_box.db.postgres import PgSchema

NAME = "account days are their keys' days"

SCHEMA = 'CREATE TABLE "key_day_usage_new" ("api_key_id" INTEGER NOT NULL, "day" VARCHAR(255) NOT NULL, "user_id" INTEGER NOT NULL, "requests" INTEGER NOT NULL, "errors" INTEGER NOT NULL, "input_tokens" INTEGER NOT NULL, "output_tokens" INTEGER NOT NULL, "cache_read_tokens" INTEGER NOT NULL, "cache_write_tokens" INTEGER NOT NULL, "cost_nanos" INTEGER NOT NULL, PRIMARY KEY ("user_id", "day", "api_key_id"), FOREIGN KEY ("user_id") REFERENCES "user" ("id") ON DELETE CASCADE) WITHOUT ROWID'  # noqa: E501

_FIGURES = TOTAL_COLUMNS.replace('"', "").split(", ")
_KEYED = ", ".join(f"SUM({c}) AS {c}" for c in _FIGURES)
_MISSING = ", ".join(f"a.{c} - COALESCE(k.{c}, 0)" for c in _FIGURES)
_DIFFERS = " OR ".join(f"a.{c} != COALESCE(k.{c}, 0)" for c in _FIGURES)
_SUMMED = ", ".join(f"SUM({c})" for c in TOTAL_COLUMNS.split(", "))
_ROWS = f'"api_key_id", "day", "user_id", {TOTAL_COLUMNS}'
_STATEMENTS = (
    SCHEMA,
    f'INSERT INTO "key_day_usage_new" ({_ROWS}) SELECT {_ROWS.replace(TOTAL_COLUMNS, _SUMMED)} '
    f'FROM (SELECT {_ROWS} FROM "key_day_usage" UNION ALL '
    f"SELECT -1, a.day, a.user_id, {_MISSING} FROM account_day_usage a "
    f"LEFT JOIN (SELECT user_id, day, {_KEYED} FROM key_day_usage GROUP BY user_id, day) k "
    f"ON k.user_id = a.user_id AND k.day = a.day WHERE {_DIFFERS}) t "
    'GROUP BY "user_id", "day", "api_key_id"',
    'DROP TABLE "key_day_usage"',
    'ALTER TABLE "key_day_usage_new" RENAME TO "key_day_usage"',
    'DROP TABLE "account_day_usage"',
)
_PG_NAMES = (  # PostgreSQL names the constraints after the table they were made in
    'ALTER TABLE "key_day_usage" RENAME CONSTRAINT "key_day_usage_new_pkey" '
    'TO "key_day_usage_pkey"',
    'ALTER TABLE "key_day_usage" RENAME CONSTRAINT "key_day_usage_new_user_id_fkey" '
    'TO "key_day_usage_user_id_fkey"',
)


def apply(db: Any) -> None:
    """Rebuild the key days in account order, with what only the account days held, and drop
    the account days."""
    for statement in _STATEMENTS:
        db.execute_sql(statement)
    if isinstance(db, PgSchema):
        for statement in _PG_NAMES:
            db.execute_sql(statement)
