"""Migration 27: on PostgreSQL, ledger_entry's index by user also orders by id.

An account's ledger newest first (`WHERE user_id = ? ORDER BY id DESC LIMIT ?`: the dashboard's
account page) comes in id order from SQLite's index by user, whose entries hold their rowid,
but not from PostgreSQL's: for an account whose entries are older than others' (every call
writes one), PostgreSQL scanned the primary key backwards through all of those (0.12 s past
300,000), or read and sorted every entry of a busy account. An index by (user_id, id) gives
them in order; it replaces the one by user_id, which it serves as well (its first column: the
foreign key's ON DELETE). SQLite's index already does this (as migration 15 for usage rows).
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
