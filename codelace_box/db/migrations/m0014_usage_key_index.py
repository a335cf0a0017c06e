"""Migration 14: usage_record's index by api_key_id goes.

Nothing reads usage rows by key: a key's spend comes from key_usage (kept in the settlement
transaction), the reports group the rows of a period found by created_at, and keys are
revoked, never deleted (so the foreign key's ON DELETE never looks rows up by key). Each
settlement wrote a page of it: one of the 16 pages a lone request's settlement commits.
"""

from __future__ import annotations

from typing import Any

NAME = "no index of usage rows by key"


def apply(db: Any) -> None:
    """Drop usage_record's index by api_key_id."""
    db.execute_sql('DROP INDEX "usage_record_api_key_id"')
