"""Ctrl-C in the middle of `migrate` on an older database (a long backfill on a big one): the
migration it was in is rolled back, those before it stay applied, and the command says where
the schema now is and what to do; `migrate` again finishes the job.

The interrupt is a real SIGINT the process sends itself when SQLite is asked to run migration
9's backfill (an apsw connection hook on PYTHONPATH traces the statements), so it lands in the
same place every run.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from codelace_box.db.migrate import LATEST_VERSION
from tests.acceptance.test_first_wave_upgrade import first_wave_box
from tests.support import REPO_ROOT, base_sections, free_port, run_cli, write_config

pytestmark = pytest.mark.timeout(120)


def signal_at(marker: str) -> str:
    """A sitecustomize that sends the process SIGINT (Ctrl-C) as it runs SQL containing
    `marker`."""
    return f"""
import os, signal, apsw

def _trace(cursor, sql, bindings):
    if {marker!r} in sql:
        os.kill(os.getpid(), signal.SIGINT)
    return True

apsw.connection_hooks.append(lambda connection: setattr(connection, "exec_trace", _trace))
"""


def _version(db: Path) -> int:
    connection = sqlite3.connect(db)
    try:
        return int(connection.execute("SELECT MAX(version) FROM schema_migration").fetchone()[0])
    finally:
        connection.close()  # an open one would be another process on the file for migrate


def test_ctrl_c_mid_migration_says_where_the_schema_is_and_migrate_finishes(
    tmp_path: Path,
) -> None:
    """It said only 'error: aborted', as a Ctrl-C before anything happened does: the operator
    could not tell that migrations 3 to 8 were applied (the first release now refuses the
    database) nor that `migrate` should be run again."""
    config = first_wave_box(tmp_path / "box", free_port())
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(signal_at('INSERT INTO "account_usage"'))
    interrupted = run_cli(config, "migrate", env={"PYTHONPATH": str(hook)})
    db = tmp_path / "box" / "data" / "codelace.db"
    assert interrupted.returncode == 1 and _version(db) == 8, interrupted.stderr
    assert interrupted.stderr.splitlines() == [
        "error: migrate was interrupted: the database is at schema version 8, this "
        f"codelace-box applies up to {LATEST_VERSION} (an older codelace-box no longer opens "
        "it): run `codelace-box migrate` again to finish"
    ]
    finished = run_cli(config, "migrate")
    said = f"migrated from schema version 8 to {LATEST_VERSION}: 9 usage totals and rollups; 10 "
    assert finished.stdout.startswith(said), finished
    assert run_cli(config, "doctor").stdout.startswith(f"ok: schema version {LATEST_VERSION}")


def test_ctrl_c_in_the_schema_check_of_an_up_to_date_database_is_aborted(tmp_path: Path) -> None:
    """Every command first checks the schema (as `migrate` does; it waits there while another
    process writes). Ctrl-C there, on a database with nothing to apply, said 'migrate was
    interrupted: ... at schema version 26, this codelace-box applies up to 26: run
    `codelace-box migrate` again to finish' to an operator who ran `users list`: no migrate
    was pending and there was nothing to finish."""
    config = write_config(tmp_path / "codelace.toml", base_sections(tmp_path))
    assert run_cli(config, "migrate").returncode == 0
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        signal_at('CREATE TABLE IF NOT EXISTS "schema_migration"')
    )
    paths = os.pathsep.join([str(hook), str(REPO_ROOT)])
    for command in (["users", "list"], ["migrate"]):
        stopped = run_cli(config, *command, env={"PYTHONPATH": paths})
        assert (stopped.returncode, stopped.stderr) == (1, "error: aborted\n"), command
    assert _version(tmp_path / "data" / "codelace.db") == LATEST_VERSION


def test_a_migrate_stopped_by_a_full_disk_says_where_the_schema_is(tmp_path: Path) -> None:
    """A migrate (or serve's, the dashboard's) that ran out of disk midway said only 'the
    database could not be written: database or disk is full', as if nothing had changed: the
    migrations before it stayed applied, so the operator who put the previous release back
    rather than free space found it refusing the database. It says, as Ctrl-C's does, where
    the schema is and that an older codelace-box no longer opens it. (The disk is SQLite's
    max_page_count, set on each connection by a hook on PYTHONPATH: a real SQLITE_FULL.)"""
    config = first_wave_box(tmp_path / "box", free_port())
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import apsw\n"
        "apsw.connection_hooks.append(lambda c: c.execute('PRAGMA max_page_count = 50'))\n"
    )
    paths = os.pathsep.join([str(hook), str(REPO_ROOT)])
    stopped = run_cli(config, "migrate", env={"PYTHONPATH": paths})
    version = _version(tmp_path / "box" / "data" / "codelace.db")
    assert stopped.returncode == 1 and 2 < version < LATEST_VERSION, stopped.stderr
    [line] = stopped.stderr.splitlines()
    assert line.startswith(
        f"error: migrate stopped at schema version {version}, this codelace-box applies up to "
        f"{LATEST_VERSION} (an older codelace-box no longer opens it): the database could not "
        "be written: database or disk is full"
    ), line
    assert line.endswith("then run `codelace-box migrate` again to finish"), line
    finished = run_cli(config, "migrate")
    said = f"migrated from schema version {version} to {LATEST_VERSION}: {version + 1} "
    assert finished.stdout.startswith(said), finished


def _migrate_entries(config: Path) -> list[tuple[int, int, list[int]]]:
    """The audit log's `migrate` entries, oldest first: (from, to, versions applied)."""
    entries = json.loads(run_cli(config, "audit", "--json").stdout)
    return sorted(
        (e["before"]["schema_version"], e["after"]["schema_version"], e["after"]["applied"])
        for e in entries
        if e["command"] == "migrate"
    )


def test_an_interrupted_migrate_is_in_the_audit_log_with_what_it_applied(tmp_path: Path) -> None:
    """Ctrl-C during migration 13 (3 to 12 applied, the audit log among them) wrote no entry
    for them: the log said only that the next migrate went from 12, and 2 to 12 never
    appeared. The interrupted run is an entry too, with what it applied."""
    config = first_wave_box(tmp_path / "box", free_port())
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(signal_at('CREATE TABLE "account_day_usage"'))
    paths = os.pathsep.join([str(hook), str(REPO_ROOT)])
    interrupted = run_cli(config, "migrate", env={"PYTHONPATH": paths})
    db = tmp_path / "box" / "data" / "codelace.db"
    assert interrupted.returncode == 1 and _version(db) == 12, interrupted.stderr
    assert run_cli(config, "migrate").returncode == 0
    assert _migrate_entries(config) == [
        (2, 12, list(range(3, 13))),
        (12, LATEST_VERSION, list(range(13, LATEST_VERSION + 1))),
    ]
    assert run_cli(config, "doctor").returncode == 0  # the hash chain holds
