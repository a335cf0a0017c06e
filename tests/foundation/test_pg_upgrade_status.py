"""Many boxes on one PostgreSQL database, upgraded: `migrate --status` says how many box
processes still serve on the database while migrations are pending.

A box of an earlier release that keeps serving while the new binary migrates is not told (the
README, "Upgrading many boxes"): after migration 22 it called the provider and answered 500
(seen with the schema-13 release). The README asks for every box stopped first, and
`migrate --status` is the step that decides it, yet it could not tell whether any still ran.
Every release on PostgreSQL holds, on each session of a serving process, the advisory lock
(OWNER_LOCK_CLASS, hashtext(owner)) that marks it alive; a session here holds one as such a
box does.

Boxes started at once after an upgrade take turns to migrate (the migration lock): one whose
turn came after more than the lock timeout (a migration over months of usage rows takes that)
failed to start, told of 'an open sqlite3 shell transaction'; it waits for its turn.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg

from codelace_box.db.core import close_database, open_database
from codelace_box.db.migrate import LATEST_VERSION
from codelace_box.db.postgres import LOCK_TIMEOUT_MS, MIGRATION_LOCK, OWNER_LOCK_CLASS
from tests.support import migrate_below, run_cli, write_config

SECRET = "a-shared-secret-for-every-box-000000000000"
CLAIM = "SELECT pg_try_advisory_lock(%s, hashtext(%s))"  # what a serving process runs


def _config(tmp_path: Path, url: str) -> Path:
    sections = {"database": {"url": url}, "server": {"secret_key": SECRET}}
    return write_config(tmp_path / "pg.toml", sections)


def test_migrate_status_counts_the_boxes_still_serving(tmp_path: Path, pg_url: str) -> None:
    migrate_below(open_database(pg_url), LATEST_VERSION)
    close_database()
    config = _config(tmp_path, pg_url)
    assert "serving" not in run_cli(config, "migrate", "--status").stdout
    boxes = [psycopg.connect(pg_url, autocommit=True) for _ in range(3)]
    try:
        for n, box in enumerate(boxes[:2]):  # two boxes; the third session is the first box's
            box.execute(CLAIM, (OWNER_LOCK_CLASS, f"vm{n}:4242:0a1b2c3d"))
        boxes[2].execute(CLAIM, (OWNER_LOCK_CLASS, "vm0:4242:0a1b2c3d"))
        lines = run_cli(config, "migrate", "--status").stdout.splitlines()
        assert lines[-1] == (
            "serving on it now: 2 box processes (stop every box, then migrate: after it, a box "
            "of a release since 2026-12-04 answers its inference requests 503 database_newer "
            "until restarted on this release, an older one fails them after calling the "
            "provider)"
        ), lines
        assert lines[-2].startswith(f"pending: {LATEST_VERSION} ")
    finally:
        for box in boxes:
            box.close()
    assert run_cli(config, "migrate").returncode == 0
    assert "serving" not in run_cli(config, "migrate", "--status").stdout


def test_a_migrate_while_boxes_serve_says_they_must_be_restarted(
    tmp_path: Path, pg_url: str
) -> None:
    """`migrate` (or a new box's `serve`) run while other boxes still serve went through in
    silence, though an earlier release's box then fails every request after the provider
    call: it now says how many were serving, on stderr (serve: in its log), and what they do
    until restarted (a release since 2026-12-04: 503 database_newer, no provider called)."""
    migrate_below(open_database(pg_url), LATEST_VERSION)
    close_database()
    config = _config(tmp_path, pg_url)
    box = psycopg.connect(pg_url, autocommit=True)
    try:
        box.execute(CLAIM, (OWNER_LOCK_CLASS, "vm0:4242:0a1b2c3d"))
        done = run_cli(config, "migrate")
    finally:
        box.close()
    said = f"migrated from schema version {LATEST_VERSION - 1} to {LATEST_VERSION}: "
    assert done.returncode == 0 and done.stdout.startswith(said), done.stdout
    assert done.stderr.splitlines() == [
        "migrated while 1 box process served on this database: restart every box on this "
        "release now (until then, a box of a release since 2026-12-04 answers its inference "
        "requests 503 database_newer, an older one fails them after calling the provider)"
    ]


def test_a_migrate_whose_turn_comes_after_the_lock_timeout_waits_for_it(
    tmp_path: Path, pg_url: str
) -> None:
    """Another process migrates (holds the migration lock) for longer than the lock timeout:
    this one's migrate waits, then finds the schema up to date (was: exit 1 after 10 s, 'the
    database is locked by another process ... an open sqlite3 shell transaction?')."""
    config = _config(tmp_path, pg_url)
    held_sec = LOCK_TIMEOUT_MS / 1000 + 2
    with psycopg.connect(pg_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        release = threading.Timer(held_sec, other.execute, ("SELECT pg_advisory_unlock_all()",))
        release.start()
        started = time.monotonic()
        try:
            done = run_cli(config, "migrate")
        finally:
            release.join()
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started >= held_sec
    status = run_cli(config, "migrate", "--status").stdout
    assert status.startswith(f"schema version {LATEST_VERSION}"), status
