"""Migration 27: on PostgreSQL, ledger_entry's index by user also orders by id.

An account's newest ledger entries (`WHERE user_id = ? ORDER BY id DESC LIMIT ?`: the admin
dashboard's user page, at each refresh) come in id order from SQLite's index by user, whose
entries hold their rowid, but not from PostgreSQL's: for an account busy before a million
entries of others (retention never deletes ledger rows), PostgreSQL went backwards along the
primary key through all of them (a quarter of a second on 600,000). An index by (user_id, id)
gives them in order; it replaces the one by user_id, which it serves as well (its first column:
the sums per account, the foreign key). As migration 15 did for usage_record.
"""

from __future__ import annotations

from typing import Any

from codelace_box.db.postgres import PgSchema

NAME = "ledger entries by user in id order (PostgreSQL)"


def apply(db: Any) -> None:
    """On PostgreSQL, index ledger_entry by (user_id, id) instead of user_id alone."""
    if not isinstance(db, PgSchema):
        return
    db.execute_sql('CREATE INDEX "ledger_entry_user_id_id" ON "ledger_entry" ("user_id", "id")')
    db.execute_sql('DROP INDEX "ledger_entry_user_id"')
