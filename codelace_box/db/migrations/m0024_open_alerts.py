"""Migration 24: the alerts that are open, kept in the database beside the upkeep's lead.

An alert whose end is told (the upkeep's: the error rate first, alerts of every kind since)
was known open only to the process that sent it: the process that took the upkeep over
(another worker, a restarted serve, another box on PostgreSQL) never said it recovered, and
sent it again while it lasted. open_alert keeps one row per open alert: its kind, its subject
and when it was sent (the stored text form of timestamps). (This text was reworded when more
kinds came to use the table; the statement and NAME, the label `migrate --status` shows and
schema_migrations stores, are as shipped.)
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
