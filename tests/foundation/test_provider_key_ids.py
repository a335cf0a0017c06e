"""A provider key's id is never another key's (migration 21: AUTOINCREMENT on SQLite; a
PostgreSQL sequence never hands an id out twice): the audit log and `key-enable NAME ID` name
keys by id. On either engine; the migration on SQLite, where it rebuilds the table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from codelace_box.catalog.providers import add_provider, add_provider_key, remove_provider_key
from codelace_box.db.copy import copy_database
from codelace_box.db.core import close_database, db_time, open_database, utcnow, write_transaction
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
        with write_transaction():  # in SQL: today's models have columns of later migrations
            db.execute_sql(
                "INSERT INTO provider (name, kind, base_url, enabled, created_at, "
                "allowed_fields, responses_api) VALUES ('up', 'openai', '', 1, "
                "'2026-03-01 00:00:00', '[]', 0)"
            )
            for n in (1, 2, 3):
                db.execute_sql(
                    "INSERT INTO provider_key (provider_id, key_encrypted, key_hint, enabled, "
                    "failing, failure_reason, created_at) VALUES (1, ?, ?, 1, 0, '', "
                    "'2026-03-01 00:00:00')",
                    (f"encrypted-{n}".encode(), f"sk-…000{n}"),
                )
            kept, removed = 2, 3
            db.execute_sql("DELETE FROM provider_key WHERE id = ?", (removed,))  # the newest
            gone_before = {"keys": [{"id": removed + 1, "hint": "sk-…0004"}]}  # audited only
            db.execute_sql(
                "INSERT INTO audit_log (created_at, os_user, client, command, target, "
                "before_state, after_state, prev_hash, hash) VALUES ('2026-03-01T00:00:00Z', "
                "'op', 'cli', 'providers key-remove', 'up', ?, NULL, '', '')",
                (json.dumps(gone_before),),
            )
        keys = "SELECT id, key_hint, key_encrypted FROM provider_key ORDER BY id"
        before = [(i, hint, bytes(token)) for i, hint, token in db.execute_sql(keys).fetchall()]
        assert migrate(db) == list(range(21, LATEST_VERSION + 1))
        after = [(k.id, k.key_hint, bytes(k.key_encrypted)) for k in ProviderKey.select()]
        assert after == before and kept in [k[0] for k in after]
        with write_transaction():
            new = add_provider_key("up", SECRET, "sk-fifth-key-0005").id
        assert new == removed + 2  # past the removed key and the one only the audit names
        sql = "SELECT sql FROM sqlite_master WHERE name = 'provider_key'"
        assert "AUTOINCREMENT" in db.execute_sql(sql).fetchone()[0]
    finally:
        close_database()


def _sequences(url: str) -> list[tuple[Any, ...]]:
    """Every id sequence of a PostgreSQL database and the last id it handed out (None: none)."""
    import psycopg

    with psycopg.connect(url) as conn:
        sql = "SELECT sequencename, last_value FROM pg_sequences ORDER BY sequencename"
        return [tuple(row) for row in conn.execute(sql).fetchall()]


@pytest.mark.parametrize("target", ["sqlite", "postgres"])
def test_a_copy_keeps_the_id_counters_past_a_removed_newest_key(
    migrated_db: Any, target: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """`db copy` set the target's counters from the largest id it copied: with the newest key
    removed before the copy, the next key on the copy got its id again (SQLite's
    sqlite_sequence and PostgreSQL's sequences were not carried over, in any direction)."""
    with write_transaction():
        add_provider("up", "openai", SECRET, "sk-first-key-0001")
        add_provider_key("up", SECRET, "sk-second-key-0002")
        newest = add_provider_key("up", SECRET, "sk-third-key-0003").id
        remove_provider_key("up", newest)
    with write_transaction() as tx:  # a table without AUTOINCREMENT: a counter on PostgreSQL
        tx.execute(
            "INSERT INTO rate_event (bucket, created_at) VALUES ('b', ?)", (db_time(utcnow()),)
        )
        tx.execute("DELETE FROM rate_event")
    close_database()
    if target == "postgres":
        url = request.getfixturevalue("pg_cluster").new_database()
    else:
        url = f"sqlite:///{tmp_path / 'copy.db'}"
    copy_database(str(migrated_db), url)  # the copy stays the open database
    try:
        with write_transaction():
            added = add_provider_key("up", SECRET, "sk-fourth-key-0004").id
    finally:
        close_database()
    assert added == newest + 1
    if target == "postgres" and str(migrated_db).startswith("postgresql://"):
        source_counters = _sequences(str(migrated_db))
        copy_counters = dict(_sequences(url))
        copy_counters["provider_key_id_seq"] = newest  # before the key added above
        assert source_counters == sorted(copy_counters.items())
