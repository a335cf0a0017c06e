"""Migration 8: budgets and limits (spend caps, reset periods, expiry, model allow-lists per
key; requests per minute and concurrent requests per account).

api_key gains its limits and the money of its current period: `spent_nanos` (charged since
`period_start`, kept by settlement) and `held_nanos` (the sum of its open holds, kept by
admission and settlement), which the key cap is checked against. Existing keys start with
their whole past spend in a period that began at their creation (no reset: it never ends).
hold records its key, so settlement and the hold sweeps know whose held_nanos to lower.
user gains `rpm` and `max_concurrent` (NULL: the `[limits]` defaults; 0: unlimited).
"""

from __future__ import annotations

from typing import Any

NAME = "key and account limits"

_STATEMENTS = (
    'ALTER TABLE "api_key" ADD COLUMN "limit_nanos" INTEGER',
    'ALTER TABLE "api_key" ADD COLUMN "limit_reset" VARCHAR(255)',
    'ALTER TABLE "api_key" ADD COLUMN "expires_at" DATETIME',
    'ALTER TABLE "api_key" ADD COLUMN "allowed_models" TEXT',
    'ALTER TABLE "api_key" ADD COLUMN "period_start" DATETIME',
    'ALTER TABLE "api_key" ADD COLUMN "spent_nanos" INTEGER NOT NULL DEFAULT 0',
    'ALTER TABLE "api_key" ADD COLUMN "held_nanos" INTEGER NOT NULL DEFAULT 0',
    'ALTER TABLE "user" ADD COLUMN "rpm" INTEGER',
    'ALTER TABLE "user" ADD COLUMN "max_concurrent" INTEGER',
    'ALTER TABLE "hold" ADD COLUMN "api_key_id" INTEGER '
    'REFERENCES "api_key" ("id") ON DELETE SET NULL',
    'CREATE INDEX "hold_api_key_id" ON "hold" ("api_key_id")',
    'UPDATE "api_key" SET "period_start" = "created_at", "spent_nanos" = (SELECT '
    'COALESCE(SUM(u."cost_nanos"), 0) FROM "usage_record" u WHERE u."api_key_id" = "api_key"."id")',
)


def apply(db: Any) -> None:
    """Add the limit columns of keys and accounts, the key of a hold, and each key's spend."""
    for statement in _STATEMENTS:
        db.execute_sql(statement)
