"""A provider key's id is never another key's (migration 21: AUTOINCREMENT on SQLite; a
PostgreSQL sequence never hands an id out twice): the audit log and `key-enable NAME ID` name
keys by id. On either engine; the migration on SQLite, where it rebuilds the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from codelace_box.catalog.providers import add_provider, add_provider_key, remove_provider_key
from codelace_box.db.core import close_database, open_database, write_transaction
from codelace_box.db.migrate import LATEST_VERSION, migrate
from codelace_box.db.migrations import MIGRATIONS
from codelace_box.db.models import ProviderKey, SchemaMigration

SECRET = "s" * 43


def test_a_removed_keys_id_is_not_given_to_the_next_key(migrated_db: Path) -> None:
    with write_transaction():
        add_provider("up", "openai", SECRET, "sk-first-key-0001")
        second = add_provider_key("up", SECRET, "sk-second-key-0002").id
        remove_provider_key("up", second)  # the newest: SQLite's rowid would hand it out again
        third = add_provider_key("up", SECRET, "sk-third-key-0003").id
    assert third > second
    assert ProviderKey.get_by_id(third).key_hint.endswith("0003")


def _at_version_20(path: Path) -> Any:
    db = open_database(path)
    with write_transaction():
        db.create_tables([SchemaMigration])
        for version, module in MIGRATIONS[:20]:
            module.apply(db)
            SchemaMigration.create(version=version, name=module.NAME)
    return db


def test_migration_21_keeps_the_keys_and_skips_every_id_used_before(tmp_path: Path) -> None:
    db = _at_version_20(tmp_path / "old.db")
    try:
        with write_transaction():
            add_provider("up", "openai", SECRET, "sk-first-key-0001")
            kept = add_provider_key("up", SECRET, "sk-second-key-0002")
            removed = add_provider_key("up", SECRET, "sk-third-key-0003").id
            remove_provider_key("up", removed)
            gone_before = {"keys": [{"id": removed + 1, "hint": "sk-…0004"}]}  # audited only
            db.execute_sql(
                "INSERT INTO audit_log (created_at, os_user, client, command, target, "
                "before_state, after_state, prev_hash, hash) VALUES ('2026-03-01T00:00:00Z', "
                "'op', 'cli', 'providers key-remove', 'up', ?, NULL, '', '')",
                (json.dumps(gone_before),),
            )
        before = [(k.id, k.key_hint, bytes(k.key_encrypted)) for k in ProviderKey.select()]
        assert migrate(db) == list(range(21, LATEST_VERSION + 1))
        after = [(k.id, k.key_hint, bytes(k.key_encrypted)) for k in ProviderKey.select()]
        assert after == before and kept.id in [k[0] for k in after]
        with write_transaction():
            new = add_provider_key("up", SECRET, "sk-fifth-key-0005").id
        assert new == removed + 2  # past the removed key and the one only the audit names
        sql = "SELECT sql FROM sqlite_master WHERE name = 'provider_key'"
        assert "AUTOINCREMENT" in db.execute_sql(sql).fetchone()[0]
    finally:
        close_database()
