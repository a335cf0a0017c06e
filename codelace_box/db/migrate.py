"""Applies pending schema migrations and reports the schema version."""

from __future__ import annotations

from datetime import datetime

from peewee import Database

from codelace_box.db import postgres
from codelace_box.db.core import (
    database,
    migration_lock,
    parse_time,
    schema_target,
    write_transaction,
)
from codelace_box.db.failures import operator_words
from codelace_box.db.migrations import MIGRATIONS, RENUMBERED
from codelace_box.db.models import SchemaMigration
from codelace_box.db.sole_user import sole_connection
from codelace_box.errors import CodelaceError, ConfigError

LATEST_VERSION = MIGRATIONS[-1][0]


def applied_versions(db: Database) -> set[int]:
    """Versions already applied (empty on a new database), as numbered now (RENUMBERED)."""
    if not db.table_exists(SchemaMigration._meta.table_name):
        return set()
    rows = SchemaMigration.select(SchemaMigration.version, SchemaMigration.name)
    return {RENUMBERED.get((row.version, row.name), row.version) for row in rows}


def _record_renumbered() -> None:
    """Record migrations applied under another number (RENUMBERED) under their number now,
    before the ones still pending are applied."""
    for (recorded, name), version in RENUMBERED.items():
        SchemaMigration.update(version=version).where(
            (SchemaMigration.version == recorded) & (SchemaMigration.name == name)
        ).execute()


def first_migrated_at(db: Database) -> datetime | None:
    """When the database was made (its first migration recorded; a `db copy`: when copied);
    None before any."""
    if not db.table_exists(SchemaMigration._meta.table_name):
        return None
    first = SchemaMigration.select(SchemaMigration.applied_at).order_by(SchemaMigration.version)
    row = first.first()
    return parse_time(row.applied_at) if row is not None else None


def current_version(db: Database) -> int:
    """The highest applied migration, 0 for a new database."""
    return max(applied_versions(db), default=0)


def refuse_newer_schema(then: str) -> None:
    """For a process that runs on while other boxes may be upgraded (PostgreSQL): CodelaceError
    once a newer codelace-box migrated the database past this one's schema, saying `then`
    (what was not done and what to do); one cheap read."""
    (version,) = database.obj.execute_sql("SELECT MAX(version) FROM schema_migration").fetchone()
    if version is not None and int(version) > LATEST_VERSION:
        raise CodelaceError(
            f"the database was migrated to schema {version} by a newer codelace-box (this one "
            f"knows up to {LATEST_VERSION}): {then} and start the new release's"
        )


def migrate(db: Database) -> list[int]:
    """Apply every pending migration in order; returns the versions applied now.

    A database migrated by a newer codelace-box (a version this one does not know) is refused
    rather than touched. Boxes starting at once on one database take turns (migration_lock).
    """
    with migration_lock(db):
        return _migrate(db)


def _migrate(db: Database) -> list[int]:
    with write_transaction():
        db.create_tables([SchemaMigration], safe=True)
    applied = applied_versions(db)
    unknown = sorted(applied - {version for version, _ in MIGRATIONS})
    if unknown:
        raise ConfigError(
            f"the database has schema migration(s) {', '.join(map(str, unknown))} that this "
            f"codelace-box does not know (it knows up to {LATEST_VERSION}): upgrade codelace-box"
        )
    pending = [version for version, _ in MIGRATIONS if version not in applied]
    if applied and pending and not postgres.is_postgres(db) and db.database != ":memory:":
        # an existing file behind this release: an older release's serve may have it open
        with sole_connection(db, lambda: applied_versions(db) == applied, max(applied)):
            return _apply(db, pending)
    return _apply(db, pending)


def _apply(db: Database, pending: list[int]) -> list[int]:
    done: list[int] = []
    if pending:
        with write_transaction():
            _record_renumbered()
    for version, module in MIGRATIONS:
        if version not in pending:
            continue
        with write_transaction():
            if version in applied_versions(db):  # another process got here first
                continue
            module.apply(schema_target(db))
            SchemaMigration.create(version=version, name=module.NAME)
        done.append(version)
    return done


def upgrade_notice(applied: list[int]) -> str | None:
    """What a command that migrated an existing database tells the operator (None: nothing
    applied, or a new database made): the schema moves one way only."""
    if not applied or min(applied) == 1:
        return None
    return (
        f"migrated the database from schema version {min(applied) - 1} to {max(applied)}: "
        "an older codelace-box no longer opens it (to go back, restore a backup taken before)"
    )


def interrupted(had: int, now: int) -> CodelaceError:
    """The error of a migrate stopped by Ctrl-C: where the schema is now, and what to do;
    a plain "aborted" (as Ctrl-C elsewhere) when it had nothing to apply, as at every command's
    schema check of an up-to-date database."""
    if had == now >= LATEST_VERSION:
        return CodelaceError("aborted")
    older = " (an older codelace-box no longer opens it)" if 0 < had < now else ""
    return CodelaceError(
        f"migrate was interrupted: the database is at schema version {now}, this codelace-box "
        f"applies up to {LATEST_VERSION}{older}: run `codelace-box migrate` again to finish"
    )


def stopped_midway(had: int, now: int, exc: BaseException) -> CodelaceError | None:
    """The error of a migrate that a database failure (a full disk, a lock, a privilege) stopped
    once it had applied some migrations (each is one transaction: those before stay): where
    the schema is now, why it stopped, and what to do. The failure's own words alone read as
    if nothing had changed. None when nothing was applied, or for a failure with no words for
    an operator (a bug keeps its traceback)."""
    why = exc.message if isinstance(exc, CodelaceError) else operator_words(exc)
    if why is None or now <= had:
        return None
    older = " (an older codelace-box no longer opens it)" if had > 0 else ""
    return CodelaceError(
        f"migrate stopped at schema version {now}, this codelace-box applies up to "
        f"{LATEST_VERSION}{older}: {why}; fix that, then run `codelace-box migrate` again to "
        "finish"
    )


def migration_status(db: Database) -> tuple[int, list[tuple[int, str]], list[int]]:
    """Read-only: the current version, the pending migrations (version, name) and any applied
    versions this codelace-box does not know (a newer one migrated the database)."""
    applied = applied_versions(db)
    pending = [(v, str(m.NAME)) for v, m in MIGRATIONS if v not in applied]
    unknown = sorted(applied - {version for version, _ in MIGRATIONS})
    return max(applied, default=0), pending, unknown
