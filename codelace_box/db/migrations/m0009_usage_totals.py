"""Migration 9: running usage totals per account and per key, and usage rollups per minute and
per day per model, backfilled from the usage rows there are.

From here on the settlement transaction keeps them (db/hotpath.py `add_to_totals`): the
customer's totals and the dashboard read them, so their cost no longer grows with history, and
retention may delete old usage rows without changing any total.
"""

from __future__ import annotations

from typing import Any

from codelace_box.db.dialect import day_sql, minute_sql

NAME = "usage totals and rollups"

TALLY = (
    "COUNT(*), SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END), SUM(input_tokens), "
    "SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cost_nanos)"
)
TOTAL_COLUMNS = (
    '"requests", "errors", "input_tokens", "output_tokens", "cache_read_tokens", '
    '"cache_write_tokens", "cost_nanos"'
)
SCHEMA = [
    'CREATE TABLE "account_usage" ("user_id" INTEGER NOT NULL PRIMARY KEY, "requests" INTEGER NOT NULL, "errors" INTEGER NOT NULL, "input_tokens" INTEGER NOT NULL, "output_tokens" INTEGER NOT NULL, "cache_read_tokens" INTEGER NOT NULL, "cache_write_tokens" INTEGER NOT NULL, "cost_nanos" INTEGER NOT NULL, "last_request_at" DATETIME, FOREIGN KEY ("user_id") REFERENCES "user" ("id") ON DELETE CASCADE)',  # noqa: E501
    'CREATE TABLE "key_usage" ("api_key_id" INTEGER NOT NULL PRIMARY KEY, "user_id" INTEGER NOT NULL, "requests" INTEGER NOT NULL, "errors" INTEGER NOT NULL, "input_tokens" INTEGER NOT NULL, "output_tokens" INTEGER NOT NULL, "cache_read_tokens" INTEGER NOT NULL, "cache_write_tokens" INTEGER NOT NULL, "cost_nanos" INTEGER NOT NULL, "last_request_at" DATETIME, FOREIGN KEY ("api_key_id") REFERENCES "api_key" ("id") ON DELETE CASCADE, FOREIGN KEY ("user_id") REFERENCES "user" ("id") ON DELETE CASCADE)',  # noqa: E501
    'CREATE INDEX "key_usage_user_id" ON "key_usage" ("user_id")',
    'CREATE TABLE "usage_rollup" ("id" INTEGER NOT NULL PRIMARY KEY, "period" VARCHAR(255) NOT NULL, "bucket" VARCHAR(255) NOT NULL, "model" VARCHAR(255) NOT NULL, "requests" INTEGER NOT NULL, "errors" INTEGER NOT NULL, "input_tokens" INTEGER NOT NULL, "output_tokens" INTEGER NOT NULL, "cache_read_tokens" INTEGER NOT NULL, "cache_write_tokens" INTEGER NOT NULL, "cost_nanos" INTEGER NOT NULL)',  # noqa: E501
    'CREATE UNIQUE INDEX "usage_rollup_period_bucket_model" ON "usage_rollup" ("period", "bucket", "model")',  # noqa: E501
]


def backfill() -> list[str]:
    """The statements that fill the totals and rollups (built when run: the bucket SQL is the
    open engine's, text on SQLite, to_char of a TIMESTAMP on PostgreSQL)."""
    return [
        f'INSERT INTO "account_usage" ("user_id", {TOTAL_COLUMNS}, "last_request_at") '
        f"SELECT user_id, {TALLY}, MAX(created_at) FROM usage_record GROUP BY user_id",
        f'INSERT INTO "key_usage" ("api_key_id", "user_id", {TOTAL_COLUMNS}, "last_request_at") '
        f"SELECT api_key_id, MIN(user_id), {TALLY}, MAX(created_at) FROM usage_record "
        "WHERE api_key_id IS NOT NULL GROUP BY api_key_id",
        *(
            f'INSERT INTO "usage_rollup" ("period", "bucket", "model", {TOTAL_COLUMNS}) '
            f"SELECT '{period}', {bucket}, model, {TALLY} FROM usage_record "
            f"GROUP BY {bucket}, model"
            for period, bucket in (
                ("minute", minute_sql("created_at")),
                ("day", day_sql("created_at")),
            )
        ),
    ]


def apply(db: Any) -> None:
    """Create the totals and rollups, and fill them from the usage rows."""
    for statement in [*SCHEMA, *backfill()]:
        db.execute_sql(statement)
