"""Migration 4: what bounds a charge. catalog_model.context_tokens is a model's context window
(what a media part of unknown size reserves); usage_record.hold_nanos is what the request
reserved, the most it could be charged (0 on rows written before it existed)."""

from __future__ import annotations

from typing import Any

NAME = "context tokens and usage holds"


def apply(db: Any) -> None:
    """Add catalog_model.context_tokens (NULL: the configured default) and
    usage_record.hold_nanos."""
    db.execute_sql('ALTER TABLE "catalog_model" ADD COLUMN "context_tokens" INTEGER')
    db.execute_sql('ALTER TABLE "usage_record" ADD COLUMN "hold_nanos" INTEGER NOT NULL DEFAULT 0')
