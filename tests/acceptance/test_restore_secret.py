"""`restore` of a backup whose provider keys were stored under another server secret: refused
before anything is replaced, saying which secret is needed and how to go on, whatever the
backup's schema; restored once the matching secret is set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codelace_box.crypto import encrypt_secret
from tests.acceptance.cli_tools import Box
from tests.acceptance.test_restore_older_schemas import release_database
from tests.support import sqlite_rows

pytestmark = pytest.mark.timeout(120)

FIRST = "first-box-secret-0123456789abcdef"
OTHER = "other-box-secret-0123456789abcdef"


def _refused_and_untouched(box: Box, backup: Path) -> str:
    """Restore BACKUP, which must be refused; the box's database is as it was. The error."""
    before = box.db_path.read_bytes()
    refused = box.fail("restore", str(backup))
    assert box.db_path.read_bytes() == before
    assert not list((box.root / "data").glob("codelace.db.replaced-*"))
    assert not list((box.root / "data").glob("*.restoring*"))
    shown = json.loads(box.ok("users", "show", "kept@secret.test", "--json"))
    assert float(shown["credit_balance_usd"]) == 3
    return refused


def _other_box(root: Path, **server: str) -> Box:
    box = Box.create(root, server=server) if server else Box.create(root)
    box.ok("users", "create", "kept@secret.test")
    box.ok("credit", "kept@secret.test", "3", "--reason", "before the restore")
    return box


def test_a_backup_made_under_another_secret_is_refused_saying_how_to_go_on(
    tmp_path: Path,
) -> None:
    first = Box.create(tmp_path / "first", server={"secret_key": FIRST})
    first.ok("providers", "add", "up", "--kind", "openai", "--key", "sk-first-0123456789")
    first.ok("providers", "key-add", "up", "--key", "sk-second-0123456789")
    backup = tmp_path / "first.db"
    first.ok("backup", str(backup))
    box = _other_box(tmp_path / "box", secret_key=OTHER)
    refused = _refused_and_untouched(box, backup)
    assert refused == (
        "error: the backup's provider keys (2: provider up key 1 (sk-…6789), ...) cannot be "
        "decrypted with this box's server secret: the backup was made under another "
        "server.secret_key; nothing changed. Set the secret of the box it was made on "
        "(server.secret_key, or the data directory's secret_key file), then restore again"
    ), refused
    restored = box.cli("restore", str(backup), env={"CODELACE_SERVER_SECRET_KEY": FIRST})
    assert restored.returncode == 0, restored.stderr
    assert box.cli("doctor", env={"CODELACE_SERVER_SECRET_KEY": FIRST}).returncode == 0


def test_a_box_without_a_secret_refuses_a_backup_with_provider_keys(tmp_path: Path) -> None:
    """A new machine before its secret was put in place."""
    first = Box.create(tmp_path / "first", server={"secret_key": FIRST})
    first.ok("providers", "add", "up", "--kind", "openai", "--key", "sk-first-0123456789")
    backup = tmp_path / "first.db"
    first.ok("backup", str(backup))
    box = _other_box(tmp_path / "box")
    refused = _refused_and_untouched(box, backup)
    assert refused.startswith(
        "error: the backup's provider keys (1: provider up key 1 (sk-…6789)) cannot be "
        "decrypted without a server secret (this box has none); nothing changed. "
    ), refused
    assert "then restore again" in refused


def test_an_older_schemas_backup_made_under_another_secret_is_refused(tmp_path: Path) -> None:
    """A backup of an older release was checked for integrity only: restored under another
    secret, its provider keys were found unreadable only by `doctor` after the migration."""
    backup = tmp_path / "older.db"
    release_database(backup, 13)
    sqlite_rows(backup, "INSERT INTO provider (id, name, kind, base_url, enabled, created_at) "
                "VALUES (7, 'old', 'openai', '', 1, '2026-12-01 09:00:00')")  # fmt: skip
    sqlite_rows(
        backup,
        "INSERT INTO provider_key (id, provider_id, key_encrypted, key_hint, enabled, failing, "
        "failure_reason, created_at) VALUES (4, 7, ?, 'sk-…6789', 1, 0, '', "
        "'2026-12-01 09:00:00')",
        (encrypt_secret(FIRST, "sk-older-0123456789"),),
    )
    box = _other_box(tmp_path / "box", secret_key=OTHER)
    refused = _refused_and_untouched(box, backup)
    assert refused.startswith(
        "error: the backup's provider keys (1: provider old key 4 (sk-…6789)) cannot be "
        "decrypted with this box's server secret"
    ), refused
    env = {"CODELACE_SERVER_SECRET_KEY": FIRST}
    restored = box.cli("restore", str(backup), env=env)
    assert restored.returncode == 0, restored.stderr


def test_a_newer_schemas_backup_is_refused_as_newer_before_its_keys_are_read(
    tmp_path: Path,
) -> None:
    """A backup a newer codelace-box migrated cannot be restored by this one whatever its
    secret: that is said, and its tables (which may no longer be as this version knows them)
    are not read for keys. Its keys were said first: the operator was sent to find the old
    secret, only to be told to upgrade once it was set."""
    first = Box.create(tmp_path / "first", server={"secret_key": FIRST})
    first.ok("providers", "add", "up", "--kind", "openai", "--key", "sk-first-0123456789")
    backup = tmp_path / "newer.db"
    first.ok("backup", str(backup))
    sqlite_rows(backup, "INSERT INTO schema_migration (version, name, applied_at) "
                "VALUES (999, 'a later release', '2027-01-01 00:00:00')")  # fmt: skip
    box = _other_box(tmp_path / "box", secret_key=OTHER)
    refused = _refused_and_untouched(box, backup)
    assert refused.startswith(
        "error: the backup fails its check, nothing changed: schema version 999 is newer than "
        "this codelace-box knows"
    ), refused
