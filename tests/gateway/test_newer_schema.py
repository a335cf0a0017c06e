"""A box left running while a newer release migrates the shared database (many boxes on one
PostgreSQL database, upgraded one at a time against the README's advice): it stops serving
inference before any upstream call, with a 503 that says why, instead of calling the provider
(billed to the operator) and then failing to settle on a table the migration changed. It sees
the newer schema on its catalog reload, within a second; a database migrated back (restored)
is served again. On either engine."""

from __future__ import annotations

import time

import openai
import pytest

from codelace_box.db.migrate import LATEST_VERSION
from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway.conftest import MODEL, Box, BoxFactory
from tests.pg_cluster import write_config_db

pytestmark = pytest.mark.timeout(60)
HELLO = [{"role": "user", "content": "hi"}]
NEWER = LATEST_VERSION + 1


def _ask(box: Box, key: str) -> object:
    return box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO, max_tokens=5)


def _refused_until_seen(box: Box, key: str) -> openai.APIStatusError:
    deadline = time.monotonic() + 5
    while True:
        try:
            _ask(box, key)
        except openai.APIStatusError as refused:
            return refused
        assert time.monotonic() < deadline, "the newer schema was never noticed"
        time.sleep(0.1)


def test_a_box_stops_before_the_upstream_once_a_newer_release_migrated(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    box = box_factory()
    email, key = box.new_user()
    _ask(box, key)
    newer = "INSERT INTO schema_migration (version, name, applied_at) VALUES (?, ?, ?)"
    write_config_db(box.config, newer, (NEWER, "from a newer release", "2026-12-04 00:00:00"))
    _refused_until_seen(box, key)  # a request may pass before the reload: then no more
    called, start = len(fake.requests), box.balance(email)
    refused = _refused_until_seen(box, key)
    assert refused.status_code == 503
    assert refused.code == "database_newer"  # type: ignore[attr-defined]
    assert f"schema {NEWER}" in refused.message and "restart" in refused.message
    assert len(fake.requests) == called and box.balance(email) == start
    write_config_db(box.config, "DELETE FROM schema_migration WHERE version = ?", (NEWER,))
    deadline = time.monotonic() + 5
    while True:
        try:
            _ask(box, key)
            break
        except openai.APIStatusError:
            assert time.monotonic() < deadline, "never served again"
            time.sleep(0.1)
