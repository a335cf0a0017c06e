"""The checks behind `codelace-box doctor`: file integrity, schema version, balances vs ledger,
the usage totals and rollups vs the ledger and each other, the audit log's hash chain, top-ups
paid in a currency other than stripe.currency.

Read-only: it never creates, migrates or repairs anything (not even a server secret); it
lists what is wrong, one line per problem, each naming the account (or the part of the
database, or the provider key) concerned.
"""

from __future__ import annotations

from datetime import datetime

from peewee import Database

from codelace_box.accounts.limits import key_hold_mismatches
from codelace_box.audit.chain import verify_chain
from codelace_box.billing.currencies import mixed_currency_problem
from codelace_box.billing.ledger import Mismatch, find_mismatches
from codelace_box.config import Config, StripeConfig
from codelace_box.crypto import decrypt_secret
from codelace_box.db.core import open_database, parse_time, quick_check, utcnow
from codelace_box.db.failures import damaged_file
from codelace_box.db.migrate import LATEST_VERSION, first_migrated_at, migration_status
from codelace_box.db.models import AuditEntry, Provider, ProviderKey
from codelace_box.db.snapshot import one_instant
from codelace_box.db.sqlite_file import missing_database
from codelace_box.errors import ConfigError, NotFound
from codelace_box.money import format_usd
from codelace_box.reports.totals_check import totals_problems
from codelace_box.upkeep.backups import backup_status


def open_existing_database(config: Config) -> Database:
    """Open the configured database, which must already exist (audit, doctor, backup and db
    copy never create one): a SQLite file not there is refused in the words of every command
    (db/sqlite_file.py missing_database); a PostgreSQL URL is opened as it is (the server says
    whether the database exists)."""
    if why := missing_database(config):
        raise NotFound(why, code="database_not_found")
    return open_database(config.database.target)


def _mismatch_lines(mismatch: Mismatch) -> list[str]:
    lines = []
    if mismatch.balance_nanos != mismatch.ledger_nanos:
        lines.append(
            f"account {mismatch.email} (id {mismatch.user_uuid}): balance "
            f"{format_usd(mismatch.balance_nanos, 9)} != ledger sum "
            f"{format_usd(mismatch.ledger_nanos, 9)}"
        )
    if mismatch.held_nanos != mismatch.holds_nanos:
        lines.append(
            f"account {mismatch.email} (id {mismatch.user_uuid}): held "
            f"{format_usd(mismatch.held_nanos, 9)} != open holds "
            f"{format_usd(mismatch.holds_nanos, 9)}"
        )
    return lines


def check_provider_keys(secret_key: str | None) -> list[str]:
    """Every stored provider key must decrypt with the server secret in use."""
    problems = []
    query = ProviderKey.select(ProviderKey, Provider).join(Provider).order_by(ProviderKey.id)
    why = (  # a restore on a new machine before its secret was put in place
        "with the current server.secret_key"
        if secret_key is not None
        else "without a server secret (none set: server.secret_key, or the data directory's "
        "secret_key file from the box that stored it)"
    )
    for key in query:
        try:
            if secret_key is None:
                raise ConfigError("no server secret")
            decrypt_secret(secret_key, key.key_encrypted)
        except ConfigError:
            problems.append(
                f"provider {key.provider.name} key {key.id} ({key.key_hint}) cannot be "
                f"decrypted {why}"
            )
    return problems


def check_database(
    db: Database, secret_key: str | None = None, stripe: StripeConfig | None = None
) -> tuple[int, list[str]]:
    """(schema version, problems): integrity, schema version, balances, holds, usage totals,
    provider keys, the audit chain, and (given the Stripe config) top-ups paid in a currency
    other than stripe.currency. On a schema older or newer than this codelace-box's only
    the first two: the others read tables and columns as this version has them (an old
    database raised). A file SQLite cannot read through (its own check, or a later one, meets
    a damaged page) is that one problem (version 0: unknown), not a crash."""
    try:
        return _checked(db, secret_key, stripe)
    except Exception as exc:
        if not damaged_file(exc):
            raise
        why = f'{exc} (SQLite cannot read the file through: restore a backup, README "Restore")'
        return 0, [f"database integrity: {why}"]


def _checked(
    db: Database, secret_key: str | None, stripe: StripeConfig | None
) -> tuple[int, list[str]]:
    """check_database's checks, in order."""
    problems: list[str] = []
    integrity = quick_check(db)
    if integrity != ["ok"]:
        problems += [f"database integrity: {line}" for line in integrity[:20]]
    version, schema = _schema_problems(db)
    problems += schema
    if version == LATEST_VERSION:  # the other checks read the schema this version made
        with one_instant(db):  # a box serving meanwhile commits between two checks' reads
            problems += _money_problems()
            problems += check_provider_keys(secret_key)
            problems += verify_chain()
            mixed = mixed_currency_problem(stripe) if stripe is not None else None
            problems += [mixed] if mixed else []
    return version, problems


def _schema_problems(db: Database) -> tuple[int, list[str]]:
    """The schema version, and what is wrong with it: behind or ahead of this codelace-box,
    or versions below it never recorded (migrate would apply them again, and fail)."""
    version, pending, _ = migration_status(db)
    if version < LATEST_VERSION:
        return version, [f"schema version {version}, expected {LATEST_VERSION} (run migrate)"]
    problems = []
    if version > LATEST_VERSION:
        problems.append(
            f"schema version {version} is newer than this codelace-box knows "
            f"({LATEST_VERSION}): upgrade codelace-box"
        )
    if missing := [str(number) for number, _ in pending if number < version]:
        problems.append(
            f"schema migration(s) {', '.join(missing)} not recorded in schema_migration below "
            f"version {version} (changed by hand? migrate would apply them again and fail): "
            "restore a backup"
        )
    return version, problems


def _money_problems() -> list[str]:
    """Balances and holds against the ledger, keys' holds, the usage totals and rollups."""
    problems = [line for mismatch in find_mismatches() for line in _mismatch_lines(mismatch)]
    problems += [
        f"API key {uuid}: held {format_usd(held, 9)} != open holds {format_usd(holds, 9)}"
        for uuid, held, holds in key_hold_mismatches()
    ]
    return problems + totals_problems()


def backup_line(db: Database, config: Config) -> tuple[str, bool]:
    """Doctor's line on the scheduled backups, and whether it is a failure (the last one
    failed, or none for two intervals while they are on: upkeep/backups.py backup_status)."""
    if config.database.is_postgres:  # backup.dir holds SQLite copies, none of this database
        return "backups: on PostgreSQL, pg_dump's (codelace-box takes none of its own)", False
    b = config.backup
    made = made_here_at(db) if b.every_hours else None
    return backup_status(b.dir, b.every_hours, utcnow(), config.database.path, made)


def made_here_at(db: Database) -> datetime | None:
    """Since when this database has been the box's: its making (its first migration) or its
    newest restore (restore.py's audit entry), whichever came later. A backup restored where
    no scheduled backup was taken yet (a new machine) is no database that went two intervals
    without one: `restore` says to run doctor before starting serve."""
    made = first_migrated_at(db)
    if not db.table_exists(AuditEntry._meta.table_name):
        return made
    restores = AuditEntry.select(AuditEntry.created_at).where(AuditEntry.command == "restore")
    newest = restores.order_by(AuditEntry.id.desc()).first()
    restored = parse_time(newest.created_at) if newest is not None else None
    return max(filter(None, (made, restored)), default=None)
