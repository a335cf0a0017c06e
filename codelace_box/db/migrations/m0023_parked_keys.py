"""Migration 23: whether a provider key is parked is a column, provider_key.parked.

A key its upstream refuses on calls though its probe works is parked (gateway/blind_keys.py):
out of rotation until the operator puts it back. That was told by a phrase inside the key's
free-text failure_reason, part of which is the upstream's own message, so a refusal quoting
the phrase made an ordinary failing key look parked (never probed again). Keys parked that
way before this migration (failing, their reason ending in the phrase codelace-box wrote)
are marked parked. Booleans are integers on both engines (db/postgres.py).
"""

from __future__ import annotations

from typing import Any

NAME = "parked provider keys"

# what catalog/keyprobe.py's parked_reason wrote after the refusal, up to migration 23
_PARKED_TEXT = (
    "%(refused on calls though its probe works: parked until the operator puts it back: "
    "providers key-enable %"
)


def apply(db: Any) -> None:
    """Add provider_key.parked; mark the failing keys whose reason says they were parked."""
    db.execute_sql('ALTER TABLE "provider_key" ADD COLUMN "parked" INTEGER NOT NULL DEFAULT 0')
    db.execute_sql(
        'UPDATE "provider_key" SET "parked" = 1 WHERE "failing" = 1 AND "failure_reason" LIKE ?',
        (_PARKED_TEXT,),
    )
