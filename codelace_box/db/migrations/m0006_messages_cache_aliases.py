"""Migration 6: prompt-cache prices, model aliases, and the route and cache tokens of usage rows.

catalog_model gains three nullable prices (NULL: the input price; the 1-hour write price NULL:
the cache write price). model_alias maps a bare name a client sends (claude-haiku-4-5) to a
catalog id. usage_record records the route a call came by (/v1/chat/completions,
/v1/messages, ...), its cache reads and writes (the 1-hour writes among them) and the cache
prices it was charged at.
"""

from __future__ import annotations

from typing import Any

NAME = "messages api, cache prices, aliases"

_STATEMENTS = (
    'ALTER TABLE "catalog_model" ADD COLUMN "cache_read_per_1m_nanos" INTEGER',
    'ALTER TABLE "catalog_model" ADD COLUMN "cache_write_per_1m_nanos" INTEGER',
    'ALTER TABLE "catalog_model" ADD COLUMN "cache_write_1h_per_1m_nanos" INTEGER',
    'CREATE TABLE "model_alias" ("name" VARCHAR(255) NOT NULL PRIMARY KEY, '
    '"model_id" VARCHAR(255) NOT NULL REFERENCES "catalog_model" ("id") ON DELETE CASCADE, '
    '"created_at" DATETIME NOT NULL)',
    'CREATE INDEX "model_alias_model_id" ON "model_alias" ("model_id")',
    'ALTER TABLE "usage_record" ADD COLUMN "route" VARCHAR(255) NOT NULL '
    "DEFAULT '/v1/chat/completions'",
    'ALTER TABLE "usage_record" ADD COLUMN "cache_read_tokens" INTEGER NOT NULL DEFAULT 0',
    'ALTER TABLE "usage_record" ADD COLUMN "cache_write_tokens" INTEGER NOT NULL DEFAULT 0',
    'ALTER TABLE "usage_record" ADD COLUMN "cache_write_1h_tokens" INTEGER NOT NULL DEFAULT 0',
    'ALTER TABLE "usage_record" ADD COLUMN "cache_read_per_1m_nanos" INTEGER NOT NULL DEFAULT 0',
    'ALTER TABLE "usage_record" ADD COLUMN "cache_write_per_1m_nanos" INTEGER NOT NULL DEFAULT 0',
    'ALTER TABLE "usage_record" ADD COLUMN "cache_write_1h_per_1m_nanos" INTEGER NOT NULL '
    "DEFAULT 0",
)


def apply(db: Any) -> None:
    """Add the cache price columns, the alias table and the usage row's route and cache."""
    for statement in _STATEMENTS:
        db.execute_sql(statement)
