"""Migration 5: the billed request fields the operator allowed per provider.

A JSON list of field names (see providers/billed_fields.py); empty for every existing provider,
so nothing that buys more than the model's price passes until the operator allows it.
"""

from __future__ import annotations

from typing import Any

NAME = "provider allowed fields"


def apply(db: Any) -> None:
    """Add provider.allowed_fields ('[]': nothing allowed)."""
    db.execute_sql(
        'ALTER TABLE "provider" ADD COLUMN "allowed_fields" TEXT NOT NULL DEFAULT \'[]\''
    )
