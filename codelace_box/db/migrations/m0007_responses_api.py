"""Migration 7: providers that serve OpenAI's Responses API themselves (`--responses-api`).

0 for every existing provider: /v1/responses keeps being translated to Chat Completions for
them until the operator says otherwise.
"""

from __future__ import annotations

from typing import Any

NAME = "provider responses api"


def apply(db: Any) -> None:
    """Add provider.responses_api (0: translate)."""
    db.execute_sql('ALTER TABLE "provider" ADD COLUMN "responses_api" INTEGER NOT NULL DEFAULT 0')
