"""Migration 10: the audit log of admin actions, the upstream's error text on usage rows, and
the counters of refused requests.

audit_log is append-only: one row per admin change (CLI or dashboard), each carrying the hash of
the row before it (`prev_hash`) and its own (`hash`, sha256 over prev_hash and the entry's
canonical JSON), so `doctor` can prove nothing was removed or changed. Its time is stored as the
ISO text that was hashed. usage_record.upstream_error keeps the provider's error message (masked,
bounded). refusal_count counts the 402/404/429 answers per hour, status and code (refusals are
counted, not written as usage rows).
"""

from __future__ import annotations

from typing import Any

NAME = "audit log, upstream error text, refusal counts"

_STATEMENTS = (
    'CREATE TABLE "audit_log" ("id" INTEGER NOT NULL PRIMARY KEY, '
    '"created_at" VARCHAR(40) NOT NULL, "os_user" VARCHAR(255) NOT NULL, '
    '"client" VARCHAR(32) NOT NULL, "command" VARCHAR(255) NOT NULL, '
    '"target" TEXT NOT NULL, "before_state" TEXT, "after_state" TEXT, '
    '"prev_hash" VARCHAR(64) NOT NULL, "hash" VARCHAR(64) NOT NULL)',
    'CREATE INDEX "audit_log_created_at" ON "audit_log" ("created_at")',
    'ALTER TABLE "usage_record" ADD COLUMN "upstream_error" TEXT',
    'CREATE TABLE "refusal_count" ("hour" VARCHAR(13) NOT NULL, "status" INTEGER NOT NULL, '
    '"code" VARCHAR(64) NOT NULL, "count" INTEGER NOT NULL, '
    'PRIMARY KEY ("hour", "status", "code"))',
)


def apply(db: Any) -> None:
    """Create audit_log and refusal_count, add usage_record.upstream_error."""
    for statement in _STATEMENTS:
        db.execute_sql(statement)
