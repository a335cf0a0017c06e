"""Migration 20: payments indexed in the order they are listed, newest first.

An account's payments (`GET /api/v1/customer/payment`, the portal, the dashboard's account page)
and everyone's (the dashboard's list) are read `ORDER BY created_at DESC, id DESC LIMIT n`.
With only an index by user_id, each read fetched all of the account's payments and sorted them
(100,000 payments: every one read for a page of 100); everyone's sorted the whole table. The
index by (user_id, created_at, id) hands an account's over in that order and replaces the one
by user_id (its first column serves the foreign key's ON DELETE); (created_at, id) does it for
everyone's. Both engines.
"""

from __future__ import annotations

from typing import Any

NAME = "payments indexed newest first"

_STATEMENTS = (
    'CREATE INDEX "payment_user_id_created_at_id" ON "payment" ("user_id", "created_at", "id")',
    'CREATE INDEX "payment_created_at_id" ON "payment" ("created_at", "id")',
    'DROP INDEX "payment_user_id"',
)


def apply(db: Any) -> None:
    """Index payments per account and overall in listing order."""
    for statement in _STATEMENTS:
        db.execute_sql(statement)
