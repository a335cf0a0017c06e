"""Migration 16: whether an API key may manage the account's keys.

api_key.can_manage_keys: 1 (the default, what every key could do before) lets the key create,
change and revoke the account's keys through /api/v1/auth/key and change /api/v1/auth/me; 0
keeps it to inference and reading the account, so a key handed to a tool with a spend cap, an
expiry or a model allow-list cannot lift them or mint a key without them. Every existing key
keeps what it could do: 1. Booleans are integers on both engines (db/postgres.py).
"""

from __future__ import annotations

from typing import Any

NAME = "key management scope of API keys"


def apply(db: Any) -> None:
    """Add api_key.can_manage_keys, 1 for every existing key."""
    db.execute_sql('ALTER TABLE "api_key" ADD COLUMN "can_manage_keys" INTEGER NOT NULL DEFAULT 1')
