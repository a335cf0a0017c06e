"""Whether a provider key is parked is a column of its own (migration 23), not a phrase found
in its failure reason, part of which is an upstream's own message: a refusal that quotes the
phrase leaves a key an ordinary failing one, and keys parked by the phrase before migration 23
stay parked after it, on both engines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from codelace_box.catalog.keyprobe import flagged_keys, parked_reason
from codelace_box.catalog.providers import add_provider, add_provider_key, get_provider
from codelace_box.cli.catalog import provider_view
from codelace_box.db.core import (
    close_database,
    open_database,
    schema_target,
    utcnow,
    write_transaction,
)
from codelace_box.db.migrate import migrate
from codelace_box.db.migrations import MIGRATIONS
from codelace_box.db.models import ProviderKey
from tests.pg_cluster import wanted_engine
from tests.support import migrate_below

SECRET = "parked-column-test-secret-0123456789abcdef"
OLD_PARKED = (
    "HTTP 403: organization blocked (refused on calls though its probe works: parked until "
    "the operator puts it back: providers key-enable openai {id})"
)


def _flag(key_id: int, reason: str) -> None:
    with write_transaction():
        ProviderKey.update(failing=True, failure_reason=reason, last_failed_at=utcnow()).where(
            ProviderKey.id == key_id
        ).execute()


def test_a_refusal_quoting_the_parked_phrase_leaves_the_key_an_ordinary_failing_one(
    migrated_db: Any,
) -> None:
    add_provider("openai", "openai", SECRET, "sk-proj-quoting-key-00001111")
    upstream_says = "HTTP 401: your key 'though its probe works: parked' is invalid"
    _flag(1, upstream_says)
    [key] = provider_view(get_provider("openai"))["keys"]
    assert key["failing"] and not key["parked"], key
    assert [k.id for k in flagged_keys(SECRET)] == [1], "a failing key is probed again"


def test_keys_parked_by_the_phrase_before_migration_23_stay_parked(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    postgres = wanted_engine() == "postgres"
    db = open_database(request.getfixturevalue("pg_url") if postgres else tmp_path / "old.db")
    try:
        migrate_below(db, 23)
        schema_target(db).execute_sql(
            "INSERT INTO provider (name, kind, base_url, enabled, created_at, allowed_fields, "
            "responses_api) VALUES ('openai', 'openai', '', 1, '2026-01-01 00:00:00', '', 0)"
        )
        for key_id, failing, reason in ((1, 1, OLD_PARKED.format(id=1)), (2, 1, "HTTP 401"),
                                        (3, 0, "")):  # fmt: skip
            schema_target(db).execute_sql(
                "INSERT INTO provider_key (id, provider_id, key_encrypted, key_hint, enabled, "
                "failing, failure_reason, created_at) VALUES (?, 1, ?, 'sk-…', 1, ?, ?, "
                "'2026-01-01 00:00:00')",
                (key_id, b"x", failing, reason),
            )
        assert migrate(db) == [v for v, _ in MIGRATIONS if v >= 23]
        parked = {k.id: bool(k.parked) for k in ProviderKey.select()}
        assert parked == {1: True, 2: False, 3: False}
    finally:
        close_database()


def test_key_enable_unparks_and_a_parked_key_is_not_probed(migrated_db: Any) -> None:
    add_provider("openai", "openai", SECRET, "sk-proj-parked-key-00001111")
    add_provider_key("openai", SECRET, "sk-proj-other-key-00002222")
    with write_transaction():
        ProviderKey.update(
            failing=True, parked=True, failure_reason=parked_reason("HTTP 403", "openai", 1)
        ).where(ProviderKey.id == 1).execute()
    assert flagged_keys(SECRET) == []
    assert provider_view(get_provider("openai"))["keys"][0]["parked"]
