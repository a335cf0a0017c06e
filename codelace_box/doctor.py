"""The checks behind `codelace-box doctor`: file integrity, schema version, balances vs ledger.

Read-only: it never creates, migrates or repairs anything; it lists what is wrong, one line
per problem, each naming the account (or the part of the database) concerned.
"""

from __future__ import annotations

from pathlib import Path

from peewee import Database

from codelace_box.billing.ledger import Mismatch, find_mismatches
from codelace_box.billing.money import format_usd
from codelace_box.db.core import open_database
from codelace_box.db.migrate import LATEST_VERSION, current_version
from codelace_box.errors import NotFound


def open_existing_database(path: str) -> Database:
    """Open a database that must already exist (doctor and backup never create one)."""
    if path != ":memory:" and not Path(path).is_file():
        raise NotFound(
            f"no database at {path} (run `codelace-box migrate` or `serve` first)",
            code="database_not_found",
        )
    return open_database(path)


def _mismatch_lines(mismatch: Mismatch) -> list[str]:
    lines = []
    if mismatch.balance_nanos != mismatch.ledger_nanos:
        lines.append(
            f"account {mismatch.email} (id {mismatch.user_id}): balance "
            f"{format_usd(mismatch.balance_nanos, 9)} != ledger sum "
            f"{format_usd(mismatch.ledger_nanos, 9)}"
        )
    if mismatch.held_nanos != mismatch.holds_nanos:
        lines.append(
            f"account {mismatch.email} (id {mismatch.user_id}): held "
            f"{format_usd(mismatch.held_nanos, 9)} != open holds "
            f"{format_usd(mismatch.holds_nanos, 9)}"
        )
    return lines


def check_database(db: Database) -> tuple[int, list[str]]:
    """(schema version, problems): integrity, the schema version, every balance and hold."""
    problems: list[str] = []
    integrity = [row[0] for row in db.execute_sql("PRAGMA quick_check").fetchall()]
    if integrity != ["ok"]:
        problems += [f"database integrity: {line}" for line in integrity[:20]]
    version = current_version(db)
    if version < LATEST_VERSION:
        problems.append(f"schema version {version}, expected {LATEST_VERSION} (run migrate)")
    elif version > LATEST_VERSION:
        problems.append(
            f"schema version {version} is newer than this codelace-box knows "
            f"({LATEST_VERSION}): upgrade codelace-box"
        )
    if version:
        for mismatch in find_mismatches():
            problems += _mismatch_lines(mismatch)
    return version, problems
