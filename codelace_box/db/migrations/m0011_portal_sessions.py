"""Migration 11: the portal's server-side sessions (a browser signed in by cookie).

Written with peewee's schema API on a frozen copy of the table, so each engine gets its own
DDL (an auto-incrementing id, its own timestamp type) and later edits of models.py cannot
change what this migration did.
"""

from __future__ import annotations

from typing import Any

from peewee import AutoField, CharField, ForeignKeyField, Model
from playhouse.apsw_ext import DateTimeField

NAME = "portal sessions"


def apply(db: Any) -> None:
    """Create portal_session (user, token hash, created, expires) and its indexes."""

    class User(Model):
        id = AutoField()

        class Meta:
            table_name = "user"

    class PortalSession(Model):
        id = AutoField()
        user = ForeignKeyField(User, on_delete="CASCADE")
        token_hash = CharField(unique=True)
        created_at = DateTimeField()
        expires_at = DateTimeField(index=True)

        class Meta:
            table_name = "portal_session"

    with db.bind_ctx([User, PortalSession]):
        PortalSession.create_table(safe=False)
