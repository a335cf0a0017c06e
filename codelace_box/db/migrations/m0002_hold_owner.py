"""Migration 2: record which server process holds each reservation.

With the owner known, a starting server releases only the holds of processes that are gone
(or holds older than any request can live), never those of another server still running on
the same database.
"""

from __future__ import annotations

from typing import Any

NAME = "hold owner"


def apply(db: Any) -> None:
    """Add hold.owner ('' for holds written before it existed: treated as orphaned)."""
    db.execute_sql('ALTER TABLE "hold" ADD COLUMN "owner" VARCHAR(255) NOT NULL DEFAULT \'\'')
