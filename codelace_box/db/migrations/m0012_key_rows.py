"""Migration 12: a key's row is written by its requests only when the key has a budget (a spend
cap or a reset period); one index fewer on hold.

- hold.key_held: whether the hold was counted in its key's held_nanos (so its settlement lowers
  it and counts the charge in the key's spent_nanos). Every hold open now was (the releases
  before this one charged every key's row): 1.
- api_key.usage_base_nanos: for a key without budget, what it spent in its (never ending)
  period is key_usage.cost_nanos minus this. Existing keys without budget get the value that
  shows what they show now (spent_nanos).
- The index of hold.api_key_id goes: no request reads holds by key (only a budget being set,
  the sweeps' recounts and doctor do, and they scan the table of requests in flight), and each
  index costs every group commit a page. hold_user_id stays: an account's concurrency limit
  counts its open holds in each admission.
"""

from __future__ import annotations

from typing import Any

NAME = "key rows only for keys with a budget"

_STATEMENTS = (
    'ALTER TABLE "hold" ADD COLUMN "key_held" INTEGER NOT NULL DEFAULT 1',
    'ALTER TABLE "api_key" ADD COLUMN "usage_base_nanos" INTEGER NOT NULL DEFAULT 0',
    'UPDATE "api_key" SET "usage_base_nanos" = COALESCE((SELECT u."cost_nanos" FROM "key_usage" u '
    'WHERE u."api_key_id" = "api_key"."id"), 0) - "spent_nanos" '
    'WHERE "limit_nanos" IS NULL AND "limit_reset" IS NULL',
    'DROP INDEX "hold_api_key_id"',
)


def apply(db: Any) -> None:
    """Add hold.key_held and api_key.usage_base_nanos (filled), drop hold's index by key."""
    for statement in _STATEMENTS:
        db.execute_sql(statement)
