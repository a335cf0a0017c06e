"""Ctrl-C (SIGINT, KeyboardInterrupt) in the middle of a write transaction: it rolls back and
the interrupt comes out as it is, on both engines, however deep the transaction is nested.

On PostgreSQL an interrupt while a statement's answer was awaited left the session in libpq's
pipeline mode, and the rollback failed on it: `db copy` stopped with "error: unexpected
OperationalError: sending query failed: ... PQsendQuery not allowed in pipeline mode" (and a
nested transaction's ROLLBACK TO with "the connection is closed") instead of saying it was
aborted. `db copy` stopped halfway says so in one line, exits 1, and leaves no row of the copy
in the target, so the same command can run again. Ctrl-C after the copy committed leaves it
whole and says so (exit 0).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import apsw
import psycopg
import pytest

from codelace_box.accounts.users import create_user
from codelace_box.db.copy import copied_models
from codelace_box.db.core import close_database, open_database, query_one, write_transaction
from codelace_box.db.migrate import migrate
from tests.foundation.many_keys import add_api_keys
from tests.support import PROGRAM, cli_env, run_cli, sqlite_rows, write_config

KEYS = 2_000  # each of their INSERTs is slowed down on the target: the copy takes seconds
# A target whose every api_key INSERT takes a few ms on the server (a slow disk, a far server):
# the copy spends its time waiting for answers, where Ctrl-C found the rollback's trouble.
PG_SLOW_INSERTS = """
CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN PERFORM pg_sleep(0.002); RETURN NEW; END $$;
CREATE TRIGGER slow_insert BEFORE INSERT ON api_key FOR EACH ROW EXECUTE FUNCTION slow_insert();
"""
SQLITE_SLOW_INSERTS = """
CREATE TRIGGER slow_insert BEFORE INSERT ON api_key
  BEGIN SELECT length(hex(randomblob(300000))); END;
"""  # no table of its own: a target holding a table not codelace-box's is refused


def _source(path: Path, keys: int) -> Path:
    """A source database with one user and `keys` API keys; the config that points at it."""
    migrate(open_database(path))
    create_user("interrupted@copy.test")
    close_database()
    add_api_keys(path, keys)
    return write_config(path.parent / "c.toml", {"database": {"path": str(path)}})


def _interrupt_when(config: Path, to_url: str, halfway: Callable[[], bool]) -> tuple[int, str]:
    """Run `db copy`, send it SIGINT once `halfway()` holds; its exit status and stderr."""
    copying = subprocess.Popen(
        [*PROGRAM, "--config", str(config), "db", "copy", "--to", to_url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not halfway():
        assert copying.poll() is None, copying.communicate()
        assert time.monotonic() < deadline, "the copy never got halfway"
        time.sleep(0.005)
    copying.send_signal(signal.SIGINT)
    _, stderr = copying.communicate(timeout=60)
    return copying.returncode, stderr


def _assert_aborted(returncode: int, stderr: str) -> None:
    assert returncode == 1, stderr
    [line] = stderr.splitlines()
    assert line == (
        "error: db copy aborted: nothing was copied (the target is as empty as before; "
        "run the same command again)"
    ), line


def test_ctrl_c_during_a_copy_to_postgresql_leaves_the_target_empty(
    tmp_path: Path, pg_url: str
) -> None:
    config = _source(tmp_path / "source.db", KEYS)
    migrate(open_database(pg_url))  # migrated but empty: the copy takes it as its target
    close_database()
    watch = psycopg.connect(pg_url, autocommit=True)
    watch.execute(PG_SLOW_INSERTS)

    def inserting_keys() -> bool:
        return bool(
            watch.execute(
                "SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND "
                "pid <> pg_backend_pid() AND state = 'active' AND query LIKE %s",
                ('INSERT INTO "api_key"%',),
            ).fetchone()
        )

    returncode, stderr = _interrupt_when(config, pg_url, inserting_keys)
    _assert_aborted(returncode, stderr)
    deadline = time.monotonic() + 10  # the server ends the copy's session and its transaction
    while watch.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()"
    ).fetchone() != (0,):
        assert time.monotonic() < deadline, "the copy's session is still open"
        time.sleep(0.01)
    for model in copied_models():
        table = model._meta.table_name
        assert watch.execute(f'SELECT count(*) FROM "{table}"').fetchone() == (0,), table
    watch.execute("DROP TRIGGER slow_insert ON api_key")
    watch.close()
    again = run_cli(config, "db", "copy", "--to", pg_url)
    assert again.returncode == 0, again.stderr
    assert f"copied {KEYS + 1} rows" in again.stdout


def test_ctrl_c_during_a_copy_to_sqlite_leaves_the_target_empty(tmp_path: Path) -> None:
    config = _source(tmp_path / "source.db", KEYS)
    target = tmp_path / "copy.db"
    migrate(open_database(target))  # migrated but empty: the copy takes it as its target
    close_database()
    probe = apsw.Connection(str(target))
    probe.execute(SQLITE_SLOW_INSERTS)
    locked_since: list[float] = []

    def copying_rows() -> bool:
        """The copy's transaction holds the write lock (for 0.2 s: not a migration's)."""
        try:
            probe.execute("BEGIN IMMEDIATE; ROLLBACK")
            locked_since.clear()
        except apsw.BusyError:
            locked_since[:] = locked_since or [time.monotonic()]
        return bool(locked_since) and time.monotonic() - locked_since[0] > 0.2

    returncode, stderr = _interrupt_when(config, f"sqlite:///{target}", copying_rows)
    _assert_aborted(returncode, stderr)
    for model in copied_models():
        table = model._meta.table_name
        assert sqlite_rows(target, f'SELECT count(*) FROM "{table}"') == [(0,)], table
    probe.execute("DROP TRIGGER slow_insert")
    probe.close()
    again = run_cli(config, "db", "copy", "--to", f"sqlite:///{target}")
    assert again.returncode == 0, again.stderr
    assert f"copied {KEYS + 1} rows" in again.stdout


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_ctrl_c_mid_statement_in_a_nested_write_rolls_back_and_stays_ctrl_c(
    tmp_path: Path, engine: str, request: pytest.FixtureRequest
) -> None:
    url = str(tmp_path / "box.db") if engine == "sqlite" else request.getfixturevalue("pg_url")
    migrate(open_database(url))
    slow = (  # a statement still running when the interrupt comes (SQLite: ends it first)
        ("SELECT pg_sleep(?)", (10,))
        if engine == "postgres"
        else ("WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < ?) "
              "SELECT sum(n) FROM c", (3_000_000,))
    )  # fmt: skip
    ctrl_c = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    try:
        with pytest.raises(KeyboardInterrupt), write_transaction():
            create_user("before@interrupt.test")
            with write_transaction() as nested:
                ctrl_c.start()
                nested.execute(*slow)
                time.sleep(10)  # SQLite's statement may end before: the interrupt comes here
    finally:
        ctrl_c.cancel()
    assert query_one('SELECT count(*) FROM "user"') == (0,)
    create_user("after@interrupt.test")  # the database takes the next write
    assert query_one('SELECT email FROM "user"') == ("after@interrupt.test",)
    close_database()


# Ctrl-C at a chosen moment of the copy's end: a `sitecustomize` on PYTHONPATH watches the
# calls of the process (sys.setprofile, nothing of the box replaced) and sends the process a
# real SIGINT at the first call (or return) of "module:function:event" where the function
# named by the fourth field is that one, its caller or its caller's caller.
SIGNAL_AT_CALL = """
import os, signal, sys

_MODULE, _FUNCTION, _EVENT, _WITHIN = os.environ["INTERRUPT_AT"].split(":")

def _within(frame):
    for _ in range(3):
        if frame is None or frame.f_code.co_name == _WITHIN:
            return frame is not None
        frame = frame.f_back
    return False

def _watch(frame, event, arg):
    if event == _EVENT and frame.f_code.co_name == _FUNCTION and (
        frame.f_globals.get("__name__") == _MODULE
    ) and _within(frame):
        sys.setprofile(None)
        os.kill(os.getpid(), signal.SIGINT)

sys.setprofile(_watch)
"""
AFTER_COMMIT = [
    "codelace_box.db.wal_sync:after_commit:call:_copy_into_target",  # its COMMIT returned
    "codelace_box.db.copy:_copy_all:return:_copy_all",  # the source's snapshot still open
    "codelace_box.db.copy:copy_database:return:copy_database",  # back in the command
    "click.utils:echo:call:db_copy",  # printing what was copied
]


def _copy_interrupted_at(
    tmp_path: Path, moment: str, to_url: str
) -> subprocess.CompletedProcess[str]:
    """`db copy` of a 20-key source to `to_url`, Ctrl-C at `moment` (SIGNAL_AT_CALL)."""
    config = _source(tmp_path / "source.db", 20)
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SIGNAL_AT_CALL)
    env = cli_env({"PYTHONPATH": str(hooks), "INTERRUPT_AT": moment})
    return subprocess.run(
        [sys.executable, "-m", "codelace_box", "--config", str(config), "db", "copy", "--to",
         to_url],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


def _assert_whole(done: subprocess.CompletedProcess[str], tmp_path: Path, url: str) -> None:
    """The command said the copy is complete (exit 0), and doctor finds it whole."""
    assert (done.returncode, done.stderr) == (0, ""), (done.stdout, done.stderr)
    assert f"copied {20 + 1} rows" in done.stdout
    assert "Ctrl-C came after the copy was complete" in done.stdout
    secret = {"secret_key": "copy-tests-secret-0123456789abcdef"}  # PostgreSQL wants one set
    target_config = write_config(tmp_path / "t.toml", {"database": {"url": url}, "server": secret})
    doctor = run_cli(target_config, "doctor")
    assert doctor.returncode == 0, doctor.stderr


NOT_THE_BINARY = pytest.mark.skipif(
    bool(os.environ.get("CODELACE_TEST_BINARY")), reason="a hook in Python"
)


@NOT_THE_BINARY
@pytest.mark.parametrize("moment", AFTER_COMMIT)
def test_ctrl_c_after_the_copy_committed_leaves_a_whole_copy_and_says_so(
    tmp_path: Path, moment: str
) -> None:
    """Ctrl-C that lands after the copy's transaction committed cannot take the copy back.
    Back in the command (or while it printed what it copied) it ended it with 'error: aborted'
    and exit 1, so the operator took a whole copy for a failed one (and the same command again
    refused it: not empty). From the moment every row is written Ctrl-C is deferred: the copy
    commits, and the command says it is complete and exits 0."""
    target = tmp_path / "copy.db"
    done = _copy_interrupted_at(tmp_path, moment, f"sqlite:///{target}")
    _assert_whole(done, tmp_path, f"sqlite:///{target}")
    assert sqlite_rows(target, "SELECT count(*) FROM api_key") == [(20,)]


@NOT_THE_BINARY
@pytest.mark.parametrize("moment", AFTER_COMMIT[:1] + AFTER_COMMIT[2:3])
def test_ctrl_c_after_a_copy_to_postgresql_committed_leaves_it_whole(
    tmp_path: Path, pg_url: str, moment: str
) -> None:
    done = _copy_interrupted_at(tmp_path, moment, pg_url)
    _assert_whole(done, tmp_path, pg_url)
    with psycopg.connect(pg_url) as check:
        assert check.execute("SELECT count(*) FROM api_key").fetchone() == (20,)
