"""The README's rollback from releases older than the previous one: the backup taken before the
upgrade has an older schema, the new binary restores it, the old binary is put back. Whatever
schema the backup has, once it has an audit log (migration 10) the restore is the last entry of
that log, chained as the release that wrote the backup chained its entries, so the old binary's
`audit` shows it and, once migrated again, `doctor` finds the chain and its head whole."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from codelace_box.db.migrate import LATEST_VERSION
from tests.acceptance.cli_tools import Box
from tests.support import sqlite_rows

pytestmark = pytest.mark.timeout(120)
AUDIT_LOG = 10  # m0010: the audit log
AUDIT_HEAD = 17  # m0017: its head


def _entry_as_written_then(prev: str, created_at: str, command: str, target: str) -> tuple:
    """An audit entry as releases from schema 10 on wrote it: the hash over the previous
    entry's hash and the entry's canonical JSON."""
    body = {"created_at": created_at, "os_user": "ops", "client": "cli", "command": command,
            "target": target, "before": None, "after": {"status": "active"}}  # fmt: skip
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256((prev + text).encode()).hexdigest()
    after = json.dumps(body["after"], sort_keys=True, separators=(",", ":"))
    return (created_at, "ops", "cli", command, target, None, after, prev, digest)


def release_database(path: Path, version: int) -> None:
    """A database as the release of schema `version` left it, two admin entries in its log
    (and its head, from 17)."""
    from codelace_box.db.core import close_database, open_database
    from tests.support import migrate_below

    path.parent.mkdir(parents=True, exist_ok=True)
    db = open_database(path)
    try:
        migrate_below(db, version + 1)
        prev = ""
        for n, when in enumerate(("2026-12-01T09:00:00.000000Z", "2026-12-01T09:05:00.000000Z")):
            row = _entry_as_written_then(prev, when, "users create", f"u{n}@restore.test")
            db.execute_sql(
                "INSERT INTO audit_log (created_at, os_user, client, command, target, "
                "before_state, after_state, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            prev = row[-1]
        if version >= AUDIT_HEAD:  # from 17 each entry moved the head in its transaction
            db.execute_sql("INSERT INTO audit_head (id, entries, hash) VALUES (1, 2, ?)", (prev,))
    finally:
        close_database()


@pytest.mark.parametrize("version", [AUDIT_LOG, 13, 16])
def test_a_rollback_to_a_backup_before_the_audit_head_is_in_its_audit_log(
    tmp_path: Path, version: int
) -> None:
    """A box upgraded from a release of schema 10 to 16 (audit log, no head yet) and rolled
    back as the README says: `restore` wrote no entry (the code took such a backup for one
    without a log), so the log the old binary serves on did not say that everything after the
    backup was replaced, nor by whom."""
    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "now@restore.test")
    backup = box.root / "backups" / "before-upgrade.db"
    release_database(backup, version)
    out = box.ok("restore", str(backup))
    assert f"(schema version {version})" in out
    assert sqlite_rows(box.db_path, "SELECT MAX(version) FROM schema_migration") == [(version,)]
    log = sqlite_rows(box.db_path, "SELECT command, target, after_state FROM audit_log ORDER BY id")
    assert [(command, target) for command, target, _ in log] == [
        ("users create", "u0@restore.test"),
        ("users create", "u1@restore.test"),
        ("restore", str(box.db_path)),
    ]
    assert json.loads(log[-1][2]) == {"backup": str(backup.resolve()), "schema_version": version}
    box.ok("migrate")
    assert box.ok("doctor").startswith(f"ok: schema version {LATEST_VERSION}")
    assert [e["command"] for e in box.json("audit")][-2:] == ["restore", "migrate"]


@pytest.mark.parametrize("version", [AUDIT_LOG, 16, LATEST_VERSION - 1])
def test_a_backup_of_an_older_releases_database_is_in_its_audit_log(
    tmp_path: Path, version: int
) -> None:
    """The new binary installed first, then the backup before the restart (a package upgrade
    replaces the binary at once): `backup` of the older schema wrote no entry, so the copy of
    every account and payment it made was in no log. It is written into that log as the
    schema has it (no head before 17), the schema left as it is for the old `serve`."""
    box = Box.create(tmp_path / "box")
    release_database(box.db_path, version)
    copy = box.root / "backups" / "before-upgrade.db"
    box.ok("backup", str(copy))
    assert sqlite_rows(box.db_path, "SELECT MAX(version) FROM schema_migration") == [(version,)]
    log = sqlite_rows(box.db_path, "SELECT command, target FROM audit_log ORDER BY id")
    assert log[-1] == ("backup", str(copy.resolve()))
    box.ok("migrate")
    assert box.ok("doctor").startswith(f"ok: schema version {LATEST_VERSION}")


def test_restoring_an_older_backup_says_how_to_roll_back_not_only_to_migrate(
    tmp_path: Path,
) -> None:
    """The README's rollback: the new binary restores the backup taken before the upgrade, then
    the old binary is put back. restore's last line only said 'next: codelace-box migrate, ...':
    an operator who followed it migrated the restored database with the new binary again, and
    the old one then refused it. It now says both ways on, and that a rollback runs no migrate."""
    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "now@restore.test")
    backup = box.root / "backups" / "before-upgrade.db"
    release_database(backup, 13)
    lines = box.ok("restore", str(backup)).splitlines()
    assert lines[-2:] == [
        "next: codelace-box migrate, then codelace-box doctor, then start the service",
        "rolling back instead? run no migrate: put back the codelace-box this backup is from "
        "(schema version 13) and start it",
    ]
