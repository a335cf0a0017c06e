"""Migration 15: on PostgreSQL, usage_record's index by user also orders by id.

An account's recent requests (`WHERE user_id = ? ORDER BY id DESC LIMIT ?`: the usage API, the
portal, the dashboard) come in id order from SQLite's index by user, whose entries hold their
rowid, but not from PostgreSQL's: for an account whose rows are older than a million others',
PostgreSQL scanned the primary key backwards through all of them (about 0.2 s on 1.3 M rows).
An index by (user_id, id) gives them in order; it replaces the one by user_id, which it serves
as well (its first column: the foreign key's ON DELETE). SQLite's index already does this.
"""

from __future__ import annotations

from typing import Any

from codelace_box.db.postgres import PgSchema

NAME = "usage rows by user in id order (PostgreSQL)"


def apply(db: Any) -> None:
    """On PostgreSQL, index usage_record by (user_id, id) instead of user_id alone."""
    if not isinstance(db, PgSchema):
        return
    db.execute_sql('CREATE INDEX "usage_record_user_id_id" ON "usage_record" ("user_id", "id")')
    db.execute_sql('DROP INDEX "usage_record_user_id"')
