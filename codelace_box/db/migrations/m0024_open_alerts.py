"""Migration 24: the alerts that are open, kept in the database beside the upkeep's lead.

An alert whose end is told (the error rate, upkeep/watch.py) was known open only to the
process that sent it: the process that took the upkeep over (another worker, a restarted
serve, another box on PostgreSQL) never said it recovered, and sent it again while it lasted.
open_alert keeps one row per open alert: its kind, its subject and when it was sent (the
stored text form of timestamps).
"""

from __future__ import annotations

from typing import Any

NAME = "open alerts"

_STATEMENT = (
    'CREATE TABLE "open_alert" ("kind" VARCHAR(32) NOT NULL, "subject" VARCHAR(255) NOT NULL, '
    '"sent_at" VARCHAR(40) NOT NULL, PRIMARY KEY ("kind", "subject"))'
)


def apply(db: Any) -> None:
    """Create open_alert."""
    db.execute_sql(_STATEMENT)
