"""Migration 25: which box user each Anthropic code execution container was answered to.

Every user of a box shares the operator's Anthropic account, and a container (the sandbox
code execution runs in, holding the files its code wrote) is named by the id Anthropic
answers. anthropic_container keeps one row per container id: the user it was answered to and
when it expires (the stored text form of timestamps), so a request naming a container only
reaches Anthropic from that user (gateway/containers.py).
"""

from __future__ import annotations

from typing import Any

NAME = "anthropic containers"

_STATEMENTS = (
    'CREATE TABLE "anthropic_container" ("container_id" VARCHAR(255) NOT NULL PRIMARY KEY, '
    '"user_id" INTEGER NOT NULL, "expires_at" VARCHAR(40) NOT NULL, '
    'FOREIGN KEY ("user_id") REFERENCES "user" ("id") ON DELETE CASCADE)',
    'CREATE INDEX "anthropic_container_expires_at" ON "anthropic_container" ("expires_at")',
    'CREATE INDEX "anthropic_container_user_id" ON "anthropic_container" ("user_id")',
)


def apply(db: Any) -> None:
    """Create anthropic_container."""
    for statement in _STATEMENTS:
        db.execute_sql(statement)
