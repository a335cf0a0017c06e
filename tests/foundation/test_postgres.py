"""PostgreSQL as the shared database: the config rule, migrations raced by two processes, and
`db copy` from SQLite to PostgreSQL and back, with `doctor` agreeing on both."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from codelace_box.accounts.sessions import end_session, find_session, start_session
from codelace_box.accounts.users import create_user
from codelace_box.audit import admin_change, list_entries
from codelace_box.audit.chain import verify_chain
from codelace_box.billing.ledger import post_entry
from codelace_box.catalog import models
from codelace_box.catalog import providers as catalog
from codelace_box.config import load_config
from codelace_box.db.batch import WriteBatch
from codelace_box.db.core import (
    Tx,
    close_database,
    open_database,
    query_all,
    schema_target,
    write_transaction,
)
from codelace_box.db.migrate import LATEST_VERSION, migrate
from codelace_box.db.migrations import MIGRATIONS
from codelace_box.db.models import ApiKey, Payment, SchemaMigration
from codelace_box.db.observability import bump_refusal, refusal_rows
from codelace_box.db.offload import start_write_thread, stop_db_thread, write_thread
from codelace_box.errors import ConfigError
from codelace_box.gateway.metering import admit
from tests.ports import free_port
from tests.support import REPO_ROOT, cli_env, run_cli, write_config

SECRET = "a-shared-secret-for-every-box-000000000000"


def test_postgresql_needs_an_explicit_secret_and_a_known_scheme(tmp_path: Path) -> None:
    url = "postgresql://box:pw@127.0.0.1:5432/box"
    config = write_config(tmp_path / "c.toml", {"database": {"url": url}})
    with pytest.raises(ConfigError, match=r"server\.secret_key must be set"):
        load_config(str(config))
    write_config(config, {"database": {"url": url}, "server": {"secret_key": SECRET}})
    assert load_config(str(config)).database.is_postgres
    write_config(config, {"database": {"url": "mysql://x@y/z"}})
    with pytest.raises(ConfigError, match=r"database\.url") as refused:
        load_config(str(config))
    assert "mysql" not in str(refused.value), "a database URL may carry a password"
    write_config(config, {"database": {"url": "sqlite:///box.db"}})
    loaded = load_config(str(config))
    assert (loaded.database.url, loaded.database.path) == ("", str(tmp_path / "box.db"))


MIGRATE = "import sys; from codelace_box.db.core import open_database; "
MIGRATE += "from codelace_box.db.migrate import migrate; print(migrate(open_database(sys.argv[1])))"


def test_two_processes_migrating_at_once_apply_each_migration_once(pg_url: str) -> None:
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, pg_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
            cwd=REPO_ROOT,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in outputs]
    applied = sorted(out.strip() for out, _ in outputs)
    assert applied == sorted(["[]", str([version for version, _ in MIGRATIONS])])
    open_database(pg_url)
    versions = [row[0] for row in query_all("SELECT version FROM schema_migration")]
    close_database()
    assert sorted(versions) == [version for version, _ in MIGRATIONS]


def test_migrate_status_and_version_read_the_postgresql_database(
    tmp_path: Path, pg_url: str
) -> None:
    sections = {"database": {"url": pg_url, "path": str(tmp_path / "unused.db")}}
    config = write_config(tmp_path / "pg.toml", sections | {"server": {"secret_key": SECRET}})
    latest = MIGRATIONS[-1][0]
    before = run_cli(config, "migrate", "--status").stdout.splitlines()
    assert before[0] == f"schema version 0 (this codelace-box knows up to {latest})", before
    assert before[-1].startswith(f"pending: {latest} ")
    assert run_cli(config, "migrate").returncode == 0
    after = run_cli(config, "migrate", "--status").stdout.splitlines()
    assert after == [f"schema version {latest} (this codelace-box knows up to {latest})",
                     "pending: none"]  # fmt: skip
    verbose = run_cli(config, "version", "--verbose").stdout
    assert "database engine: postgresql (psycopg 3." in verbose
    assert f"database: {pg_url}: schema version {latest} " in verbose
    assert not (tmp_path / "unused.db").exists()


def _populate(path: Path) -> None:
    migrate(open_database(path))
    user = create_user("copy@example.com")
    post_entry(user.id, 5_000_000_000, "admin", "seed", "seed-copy")
    catalog.add_provider("acme", "openai", SECRET, "sk-copy-key-00000", "http://127.0.0.1:9/v1")
    models.set_model("acme/m1", "2", "8")
    admit(user.id, "req-open", 1_000)  # a call in flight: its hold stays with the source
    close_database()


def test_db_copy_to_postgresql_and_back(tmp_path: Path, pg_url: str) -> None:
    source = tmp_path / "source.db"
    _populate(source)
    sqlite_config = write_config(
        tmp_path / "sqlite.toml",
        {"database": {"path": str(source)}, "server": {"secret_key": SECRET}},
    )
    copied = run_cli(sqlite_config, "db", "copy", "--to", pg_url)
    assert copied.returncode == 0, copied.stderr
    assert "copied" in copied.stdout
    assert "1 call was in flight at the source" in copied.stderr
    pg_config = write_config(
        tmp_path / "pg.toml", {"database": {"url": pg_url}, "server": {"secret_key": SECRET}}
    )
    doctor = run_cli(pg_config, "doctor")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    again = run_cli(sqlite_config, "db", "copy", "--to", pg_url)
    assert again.returncode != 0 and "not empty" in again.stderr
    backup = run_cli(pg_config, "backup", str(tmp_path / "b.db"))
    assert backup.returncode != 0 and "pg_dump" in backup.stderr
    back = tmp_path / "back.db"
    returned = run_cli(pg_config, "db", "copy", "--to", f"sqlite:///{back}")
    assert returned.returncode == 0, returned.stderr
    back_config = write_config(
        tmp_path / "back.toml", {"database": {"path": str(back)}, "server": {"secret_key": SECRET}}
    )
    assert run_cli(back_config, "doctor").returncode == 0
    open_database(back)
    rows = query_all('SELECT email, balance_nanos, held_nanos FROM "user"')
    holds = query_all("SELECT request_id, amount_nanos FROM hold")
    close_database()
    assert rows == [("copy@example.com", 5_000_000_000, 0)]  # the copy holds nothing for it
    assert holds == []
    open_database(pg_url)
    create_user("after-copy@example.com")  # the id sequence continues after the copied rows
    close_database()


def _as_release_left_it(db: Any, release: int) -> None:
    """Migrate an empty database to the schema of `release`, as that release left it."""
    with write_transaction():
        db.create_tables([SchemaMigration])
    for number, module in MIGRATIONS[:release]:
        with write_transaction():
            module.apply(schema_target(db))
            SchemaMigration.create(version=number, name=module.NAME)


def test_migration_16_lets_every_existing_key_keep_managing_keys_on_postgresql(
    pg_url: str,
) -> None:
    db = open_database(pg_url)
    try:
        _as_release_left_it(db, 15)
        with write_transaction():
            db.execute_sql(
                'INSERT INTO "user" (uuid, email, display_name, status, balance_nanos, '
                "held_nanos, created_by_admin, created_at) VALUES ('u1', 'old@example.com', '', "
                "'active', 0, 0, 0, '2026-01-01 00:00:00')"
            )
            db.execute_sql(
                "INSERT INTO api_key (uuid, user_id, name, key_prefix, key_hash, created_at, "
                "limit_nanos) SELECT 'k1', id, '', 'cl_abcd', 'hash-1', '2026-01-01 00:00:00', "
                '5 FROM "user"'
            )
        assert migrate(db) == list(range(16, LATEST_VERSION + 1))
        assert query_all("SELECT uuid, can_manage_keys FROM api_key") == [("k1", 1)]
        assert ApiKey.get(ApiKey.uuid == "k1").can_manage_keys is True
    finally:
        close_database()


def test_migration_18_keeps_every_payment_with_nothing_refunded_on_postgresql(
    pg_url: str,
) -> None:
    db = open_database(pg_url)
    try:
        _as_release_left_it(db, 17)
        with write_transaction():
            db.execute_sql(
                'INSERT INTO "user" (uuid, email, display_name, status, balance_nanos, '
                "held_nanos, created_by_admin, created_at) VALUES ('u1', 'old@example.com', '', "
                "'active', 0, 0, 0, '2026-01-01 00:00:00')"
            )
            db.execute_sql(
                "INSERT INTO payment (uuid, user_id, amount_nanos, kind, status, "
                "stripe_session_id, currency, created_at) SELECT 'p1', id, 5, 'topup', "
                "'completed', 'cs_1', 'usd', '2026-01-01 00:00:00' FROM \"user\""
            )
        assert migrate(db) == list(range(18, LATEST_VERSION + 1))
        assert query_all("SELECT uuid, payment_intent, refunded_nanos FROM payment") == [
            ("p1", None, 0)
        ]
        with write_transaction():
            Payment.update(payment_intent="pi_1", refunded_nanos=5).execute()
        assert Payment.get(Payment.uuid == "p1").refunded_nanos == 5
        assert query_all("SELECT COUNT(*) FROM stripe_reversal") == [(0,)]
    finally:
        close_database()


async def test_the_group_commit_runs_on_its_write_thread_and_a_failure_stays_alone(
    pg_db: str,
) -> None:
    thread = start_write_thread()
    assert thread is not None and write_thread() is thread
    batch = WriteBatch()

    def where(tx: Tx) -> str:
        tx.execute('UPDATE "user" SET held_nanos = held_nanos WHERE id = 0')
        return threading.current_thread().name

    def fails(tx: Tx) -> None:
        tx.execute("SELECT * FROM no_such_table")

    try:
        results = await asyncio.gather(
            batch.submit(where), batch.submit(fails), batch.submit(where), return_exceptions=True
        )
        assert str(results[0]).startswith("codelace-write") and results[2] == results[0]
        assert isinstance(results[1], Exception) and "does not exist" in str(results[1])
        assert threading.current_thread().name != results[0]  # not the loop's thread
        late = batch.submit(where)  # queued while nothing is in flight: flushed on the next turn
        await batch.written()
        assert late.done() and late.result() == results[0]
    finally:
        stop_db_thread()
    assert write_thread() is None


def test_admins_writing_at_once_on_two_connections_keep_one_audit_chain(pg_db: str) -> None:
    def write_entries(n: int) -> None:
        try:
            for i in range(15):
                with admin_change("cli", "users create", f"t{n}-{i}@example.com"):
                    pass
        finally:
            close_database()  # this thread's own connection

    workers = [threading.Thread(target=write_entries, args=(n,)) for n in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    entries = list_entries()
    assert len(entries) == 45
    assert verify_chain() == []  # without the chain's lock two entries follow the same one
    assert all(e.created_at.endswith("Z") for e in entries)  # the text that was hashed


def test_portal_sessions_start_find_expire_and_end_on_postgresql(pg_db: str) -> None:
    user = create_user("portal@example.com")
    started = start_session(user, SECRET, ttl_sec=600)
    found = find_session(started.token, SECRET)
    assert found is not None and (found.user_id, found.email) == (user.id, user.email)
    expired = start_session(user, SECRET, ttl_sec=-1)
    assert find_session(expired.token, SECRET) is None
    end_session(started.token)
    assert find_session(started.token, SECRET) is None
    start_session(user, SECRET, ttl_sec=600)  # a new sign-in sweeps the expired row
    assert query_all("SELECT COUNT(*) FROM portal_session") == [(1,)]


def test_refusal_counts_add_up_through_the_upsert_on_postgresql(pg_db: str) -> None:
    with write_transaction() as tx:
        bump_refusal(tx, "2026-12-02 10", 429, "rate_limited", 2)
        bump_refusal(tx, "2026-12-02 10", 429, "rate_limited", 3)
        bump_refusal(tx, "2026-12-02 11", 402, "insufficient_credits", 1)
    assert refusal_rows("2026-12-02 00") == [
        (429, "rate_limited", 5),
        (402, "insufficient_credits", 1),
    ]


async def test_a_batch_aborted_by_a_deadlock_runs_again_and_counts_its_metrics_once(
    pg_db: str,
) -> None:
    """Another connection locks the rows the batch's write wants, in the opposite order:
    PostgreSQL aborts the batch (it waited first); the batch runs again once the other
    committed, its write answers as if nothing happened, and what it counted in the metrics
    is counted once (not once per run)."""
    import psycopg

    from codelace_box import metrics

    first, second = create_user("dl-a@pg.test").id, create_user("dl-b@pg.test").id
    bump = 'UPDATE "user" SET held_nanos = held_nanos WHERE id = ?'
    runs: list[int] = []
    counter = metrics.inference("deadlock/model", "deadlock", "ok")
    before = counter._value.get()
    taken, waiting = threading.Event(), threading.Event()

    def write(tx: Tx) -> str:
        runs.append(1)  # outside the transaction: how often it ran
        tx.execute(bump, (first,))
        assert tx.changes() == 1  # answered (a batch sends when it waits): `first` is ours
        waiting.set()
        tx.execute(bump, (second,))
        metrics.inference("deadlock/model", "deadlock", "ok").inc()
        return "written"

    def other() -> None:
        with psycopg.connect(pg_db) as conn:  # a transaction, committed on leaving
            # this side looks for the deadlock last (the batch's 1 s comes first, however
            # slow the machine is), so the batch is the one PostgreSQL aborts
            conn.execute("SET deadlock_timeout = '8s'")
            conn.execute(bump.replace("?", "%s"), (second,))
            taken.set()
            waiting.wait(10)
            _until_a_lock_is_awaited(pg_db)  # the batch waits for `second`: it waited first
            conn.execute(bump.replace("?", "%s"), (first,))

    start_write_thread()
    rival = threading.Thread(target=other)
    rival.start()
    try:
        taken.wait(10)
        assert await WriteBatch().submit(write) == "written"
    finally:
        rival.join(30)
        stop_db_thread()
    # aborted by the deadlock, then ran again (a third run when, as the batch's first run
    # rolled back, its second took the row back before the other connection had it)
    assert len(runs) in (2, 3)
    assert counter._value.get() - before == 1


def _until_a_lock_is_awaited(url: str) -> None:
    """Return once some connection of the database waits for a lock (10 s at most)."""
    import time

    import psycopg

    deadline = time.monotonic() + 10
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            if conn.execute("SELECT 1 FROM pg_locks WHERE NOT granted").fetchone():
                return
            time.sleep(0.01)


def test_scheduled_backups_are_refused_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    """Scheduled backups copy database.path: on PostgreSQL that is the SQLite file a move left
    behind (or none), and doctor showed those copies as fresh backups of the database."""
    stale = tmp_path / "data" / "codelace.db"
    _populate(stale)  # the SQLite database the move to PostgreSQL left behind
    sections: dict[str, dict[str, object]] = {
        "database": {"url": pg_url, "path": str(stale)},
        "server": {"secret_key": SECRET},
        "backup": {"every_hours": 24, "dir": str(tmp_path / "backups")},
    }
    config = write_config(tmp_path / "pg.toml", sections)
    for env in ({}, {"CODELACE_BACKUP_EVERY_HOURS": "1"}):
        refused = run_cli(config, "migrate", env=env)
        assert refused.returncode == 1 and refused.stdout == ""
        [line] = refused.stderr.splitlines()
        assert "backup.every_hours must be 0 when database.url is PostgreSQL" in line, line
        assert "pg_dump" in line and ("env CODELACE_BACKUP_EVERY_HOURS" in line) == bool(env)
    sections["backup"]["every_hours"] = 0
    write_config(config, sections)
    assert run_cli(config, "migrate").returncode == 0
    doctor = run_cli(config, "doctor")
    assert doctor.returncode == 0, doctor.stderr
    assert doctor.stdout.splitlines()[-1] == (
        "backups: on PostgreSQL, pg_dump's (codelace-box takes none of its own)"
    )


def test_serve_refuses_a_postgresql_database_a_newer_release_migrated(
    tmp_path: Path, pg_url: str
) -> None:
    """Many boxes on one database: a box of the older release started after a newer one
    migrated the schema stops at once, saying why, instead of serving writes the new schema
    lost (the README's upgrade for many boxes counts on it)."""
    migrate(open_database(pg_url))
    SchemaMigration.create(version=LATEST_VERSION + 1, name="a newer release's")
    close_database()
    sections = {"database": {"url": pg_url}, "server": {"secret_key": SECRET, "port": free_port()}}
    config = write_config(tmp_path / "pg.toml", sections)
    served = run_cli(config, "serve", "--host", "127.0.0.1", timeout=60)
    assert served.returncode != 0, served.stdout
    assert f"migration(s) {LATEST_VERSION + 1} that this codelace-box does not know" in (
        served.stderr
    )
