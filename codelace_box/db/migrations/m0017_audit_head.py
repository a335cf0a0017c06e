"""Migration 17: how far the audit log goes, recorded beside it.

The hash chain of audit_log shows an entry changed or removed from its middle, but not the
newest entries removed (what is left is still a whole chain). audit_head keeps one row, written
in the transaction of every entry: how many entries were written and the newest one's hash;
`doctor` compares the log with it. A database that already has entries starts from them.
"""

from __future__ import annotations

from typing import Any

NAME = "audit log head"

_STATEMENTS = (
    'CREATE TABLE "audit_head" ("id" INTEGER NOT NULL PRIMARY KEY, '
    '"entries" INTEGER NOT NULL, "hash" VARCHAR(64) NOT NULL)',
    'INSERT INTO "audit_head" ("id", "entries", "hash") SELECT 1, '
    '(SELECT COUNT(*) FROM "audit_log"), '
    '(SELECT "hash" FROM "audit_log" ORDER BY "id" DESC LIMIT 1) '
    'WHERE EXISTS (SELECT 1 FROM "audit_log")',
)


def apply(db: Any) -> None:
    """Create audit_head, from the entries already written."""
    for statement in _STATEMENTS:
        db.execute_sql(statement)
