"""Migration 3: a UUID beside the integer id of every user, API key and payment.

The HTTP API, the CLI and the dashboard show these UUIDs; the integer ids stay the primary
and foreign keys. Every existing row gets its own UUID4, then a unique index holds them apart.
"""

from __future__ import annotations

from typing import Any

from codelace_box.db.ids import new_uuid

NAME = "public uuids"
TABLES = ("user", "api_key", "payment")


def apply(db: Any) -> None:
    """Add `uuid` to each table, give every row a fresh one, and index it (unique)."""
    for table in TABLES:
        db.execute_sql(f'ALTER TABLE "{table}" ADD COLUMN "uuid" VARCHAR(36) NOT NULL DEFAULT \'\'')
        ids = [row[0] for row in db.execute_sql(f'SELECT "id" FROM "{table}"').fetchall()]
        for row_id in ids:
            db.execute_sql(f'UPDATE "{table}" SET "uuid" = ? WHERE "id" = ?', (new_uuid(), row_id))
        db.execute_sql(f'CREATE UNIQUE INDEX "{table}_uuid" ON "{table}" ("uuid")')
