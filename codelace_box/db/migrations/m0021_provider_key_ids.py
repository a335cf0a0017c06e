"""Migration 21: a provider key's id is never given to another key (SQLite: AUTOINCREMENT).

SQLite gives a new row the largest id in the table plus one, so after the newest key was
removed (`providers key-remove`) the next key added got its id: the audit log's "key 3" then
named two different keys, and `key-enable NAME 3` meant another key than it did yesterday.
With AUTOINCREMENT SQLite never hands out an id it gave before. The table is rebuilt with its
rows (nothing references it), and the counter starts past every key id it has and every one
the audit log names (keys removed before this migration included). PostgreSQL's sequences
never hand out an id twice already: nothing changes there.
"""

from __future__ import annotations

import json
from typing import Any

from codelace_box.db.postgres import PgSchema

NAME = "provider key ids never reused"

_COLUMNS = (
    '"id", "provider_id", "key_encrypted", "key_hint", "enabled", "failing", "failure_reason", '
    '"created_at", "last_failed_at"'
)
_STATEMENTS = (
    'CREATE TABLE "provider_key_new" ("id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, "provider_id" INTEGER NOT NULL, "key_encrypted" BLOB NOT NULL, "key_hint" VARCHAR(255) NOT NULL, "enabled" INTEGER NOT NULL, "failing" INTEGER NOT NULL, "failure_reason" TEXT NOT NULL, "created_at" DATETIME NOT NULL, "last_failed_at" DATETIME, FOREIGN KEY ("provider_id") REFERENCES "provider" ("id") ON DELETE CASCADE)',  # noqa: E501
    f'INSERT INTO "provider_key_new" ({_COLUMNS}) SELECT {_COLUMNS} FROM "provider_key"',
    'DROP TABLE "provider_key"',
    'ALTER TABLE "provider_key_new" RENAME TO "provider_key"',
    'CREATE INDEX "provider_key_provider_id" ON "provider_key" ("provider_id")',
)
_AUDITED_STATES = "SELECT before_state, after_state FROM audit_log WHERE command LIKE 'providers %'"


def apply(db: Any) -> None:
    """On SQLite, rebuild provider_key with AUTOINCREMENT, its counter past every id used."""
    if isinstance(db, PgSchema):
        return
    for statement in _STATEMENTS:
        db.execute_sql(statement)
    used = max(_largest_audited_key(db), _largest_key(db))
    if used > 0:
        db.execute_sql("DELETE FROM sqlite_sequence WHERE name = 'provider_key'")
        db.execute_sql(
            "INSERT INTO sqlite_sequence (name, seq) VALUES ('provider_key', ?)", (used,)
        )


def _largest_key(db: Any) -> int:
    return int(db.execute_sql('SELECT COALESCE(MAX("id"), 0) FROM "provider_key"').fetchone()[0])


def _largest_audited_key(db: Any) -> int:
    """The largest key id a provider's state in the audit log names (its keys by id)."""
    largest = 0
    for states in db.execute_sql(_AUDITED_STATES).fetchall():
        for text in states:
            largest = max([largest, *_key_ids(text)])
    return largest


def _key_ids(text: str | None) -> list[int]:
    try:
        state = json.loads(text or "null")
    except ValueError:
        return []
    keys = state.get("keys") if isinstance(state, dict) else None
    if not isinstance(keys, list):
        return []
    return [k["id"] for k in keys if isinstance(k, dict) and isinstance(k.get("id"), int)]
