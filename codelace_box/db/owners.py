"""Hold owners' liveness as the engine knows it (gateway/holds.py names the owners): on
PostgreSQL a live process claims its owner on each of its sessions (an advisory lock, see
db/postgres.py OWNER_LOCK_CLASS), so any box sees which owners no session claims; on SQLite the
host's processes tell (the caller asks the OS). Also which box leads shared work across boxes
(`lead_across_boxes`, another advisory lock held while its session lives).
"""

from __future__ import annotations

from collections.abc import Sequence

from codelace_box.db import postgres
from codelace_box.db.core import POSTGRES, connection, database, engine, query_all


def claim_owner(owner: str) -> None:
    """Mark this process alive as `owner` of holds while connected (PostgreSQL: `gone_owners`)."""
    db = database.obj
    if postgres.is_postgres(db):
        db.owner = owner  # its sessions from now on are a serving process's (pg_driver)
        connection().execute(postgres.SERVING_SESSION_SQL)
        connection().execute(postgres.CLAIM_OWNER_SQL, (postgres.OWNER_LOCK_CLASS, owner))


def claim_owner_again(owner: str) -> None:
    """Claim `owner` on this thread's session when no session claims it (PostgreSQL): the one
    that did may have been dropped (a restart, a failover, a proxy's idle cut) while this
    process lives on. (A session claims once: a claim taken twice is held twice.)"""
    if engine() == POSTGRES and gone_owners([owner]):
        connection().execute(postgres.CLAIM_OWNER_SQL, (postgres.OWNER_LOCK_CLASS, owner))


def gone_owners(owners: Sequence[str]) -> list[str] | None:
    """Hold owners no live process claims (PostgreSQL); None on SQLite (the caller asks the OS)."""
    if engine() != POSTGRES:
        return None
    sql, lock_class = postgres.GONE_OWNERS_SQL, postgres.OWNER_LOCK_CLASS
    return [row[0] for row in query_all(sql, (list(owners), lock_class))]


def owner_claims_can_drop() -> bool:
    """Whether a hold owner is judged alive by database sessions that claim it (PostgreSQL),
    which the server may drop while the process lives on; on SQLite by the host's processes,
    whose end is final."""
    return engine() == POSTGRES


def lead_across_boxes(role: str) -> bool:
    """Whether this session leads `role` among every box on the database, taking the lead if
    no live session holds it (PostgreSQL: a session advisory lock, dropped with the session
    of a box that died, then taken by the next box that asks). SQLite: True (one box; its
    workers choose their leader themselves)."""
    if engine() != POSTGRES:
        return True
    lock = (postgres.LEAD_LOCK_CLASS, role)
    held = query_all(postgres.LEADS_SQL, lock)[0][0]  # a session takes it once, not per ask
    return bool(held or query_all(postgres.TAKE_LEAD_SQL, lock)[0][0])


def serving_processes() -> int | None:
    """How many processes serve on this database now, any release's (PostgreSQL: the owners
    their sessions claim, this database's); None on SQLite."""
    if engine() != POSTGRES:
        return None
    rows = query_all(postgres.SERVING_OWNERS_SQL, (postgres.OWNER_LOCK_CLASS,))
    return int(rows[0][0])
