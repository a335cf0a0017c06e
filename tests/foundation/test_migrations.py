"""db/migrate.py: numbered migrations, a table of what ran, and a schema equal to db/models.py."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from peewee import IntegrityError
from playhouse.apsw_ext import APSWDatabase

from codelace_box.accounts.limits import spent_in_period
from codelace_box.db.core import close_database, open_database, write_transaction
from codelace_box.db.migrate import LATEST_VERSION, applied_versions, current_version, migrate
from codelace_box.db.migrations import MIGRATIONS
from codelace_box.db.models import ALL_MODELS, ApiKey, Hold, Payment, SchemaMigration, User
from codelace_box.errors import ConfigError
from tests.support import cli_env, is_uuid4, run_cli, sqlite_rows


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Any]:
    yield open_database(tmp_path / "schema.db")
    close_database()


def test_the_migration_list_is_numbered_from_one_without_gaps() -> None:
    versions = [version for version, _ in MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1))
    assert versions[-1] == LATEST_VERSION
    for version, module in MIGRATIONS:
        assert module.__name__.split(".")[-1].startswith(f"m{version:04d}_")
        assert module.NAME and callable(module.apply)


def test_a_new_database_gets_every_migration_recorded(db: Any) -> None:
    assert current_version(db) == 0
    assert migrate(db) == [version for version, _ in MIGRATIONS]
    rows = list(SchemaMigration.select().order_by(SchemaMigration.version))
    assert [(r.version, r.name) for r in rows] == [(v, m.NAME) for v, m in MIGRATIONS]
    assert all(r.applied_at is not None for r in rows)
    assert current_version(db) == LATEST_VERSION


def test_running_migrate_again_changes_nothing(db: Any) -> None:
    migrate(db)
    before = [(r.version, r.applied_at) for r in SchemaMigration.select()]
    assert migrate(db) == []
    assert [(r.version, r.applied_at) for r in SchemaMigration.select()] == before


def table_shape(connection: Any, table: str) -> dict[str, Any]:
    """Columns, indexes and foreign keys of a table, as SQLite reports them."""

    def rows(sql: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in connection.execute_sql(sql).fetchall()]

    columns = sorted(
        (r[1], r[2].upper(), r[3], r[5]) for r in rows(f'PRAGMA table_info("{table}")')
    )
    indexes = set()
    for index in rows(f'PRAGMA index_list("{table}")'):
        cols = tuple(r[2] for r in rows(f'PRAGMA index_info("{index[1]}")'))
        indexes.add((cols, bool(index[2])))
    foreign = sorted((r[3], r[2], r[4], r[6]) for r in rows(f'PRAGMA foreign_key_list("{table}")'))
    return {"columns": columns, "indexes": indexes, "foreign_keys": foreign}


def test_the_migrated_schema_is_what_models_py_declares(db: Any, tmp_path: Path) -> None:
    migrate(db)
    declared = APSWDatabase(str(tmp_path / "declared.db"))
    models = [*ALL_MODELS, SchemaMigration]
    with declared.bind_ctx(models):
        declared.create_tables(models)
    tables = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    migrated_tables = {r[0] for r in db.execute_sql(tables).fetchall()}
    declared_tables = {r[0] for r in declared.execute_sql(tables).fetchall()}
    assert migrated_tables == declared_tables == {m._meta.table_name for m in models}
    for table in sorted(declared_tables):
        assert table_shape(db, table) == table_shape(declared, table), table
    declared.close()


def test_a_database_from_a_newer_release_is_refused(db: Any) -> None:
    migrate(db)
    SchemaMigration.create(version=LATEST_VERSION + 7, name="from the future")
    with pytest.raises(ConfigError, match=r"does not know .*upgrade codelace-box"):
        migrate(db)
    assert applied_versions(db) == {v for v, _ in MIGRATIONS} | {LATEST_VERSION + 7}


def test_two_processes_migrating_at_once_apply_each_migration_once(tmp_path: Path) -> None:
    config = tmp_path / "codelace.toml"
    config.write_text(f'[database]\npath = "{tmp_path / "race.db"}"\n')
    command = [sys.executable, "-m", "codelace_box", "--config", str(config), "migrate"]
    runs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env())
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=60) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0], outputs
    db = open_database(tmp_path / "race.db")
    rows = db.execute_sql("SELECT version FROM schema_migration ORDER BY version").fetchall()
    close_database()
    assert [r[0] for r in rows] == [v for v, _ in MIGRATIONS]


# An older release's `serve` between two requests: its connection to the file is open and idle.
OLDER_SERVE = (
    "import sys, apsw; c = apsw.Connection(sys.argv[1]); "
    "c.execute('SELECT COUNT(*) FROM schema_migration').fetchall(); "
    "print('open', flush=True); sys.stdin.read()"
)


def _served_by_an_older_release(tmp_path: Path) -> tuple[Path, Path, subprocess.Popen[str]]:
    """A database at schema version 2, its config, and an older release's serve holding it
    open (OLDER_SERVE: it stops when its stdin is closed)."""
    path = tmp_path / "old.db"
    db = open_database(path)
    migrate_up_to(db, 2)
    close_database()
    config = tmp_path / "codelace.toml"
    config.write_text(f'[database]\npath = "{path}"\n')
    older = subprocess.Popen(
        [sys.executable, "-c", OLDER_SERVE, str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    return path, config, older


def test_an_older_schema_in_use_by_another_process_is_not_migrated_under_it(
    tmp_path: Path,
) -> None:
    """Upgrading, an operator ran a command of the new release (`users list`, `credit`, the
    dashboard) while the old release's `serve` still ran: the command migrated the schema under
    it, and the old server went on writing rows the new schema does not expect (keys, users
    and payments with an empty uuid, the next one a 500 on sign-in; usage missing from the new
    totals and key spend). Now the command waits for the file to be free, then says what to do,
    and changes nothing; once the old server has stopped, the same command migrates."""
    path, config, older = _served_by_an_older_release(tmp_path)
    try:
        assert older.stdout is not None and older.stdout.readline() == "open\n"
        for args in (("users", "list"), ("migrate",)):
            refused = run_cli(config, *args)
            assert refused.returncode == 1, (args, refused.stdout, refused.stderr)
            [line] = refused.stderr.splitlines()
            assert line.startswith(f"error: {path} is at schema version 2 and open in another "
                                   "process"), line  # fmt: skip
            assert "stop it" in line and "codelace-box migrate" in line, line
        assert older.poll() is None
    finally:
        older.communicate("")
    assert sqlite_rows(path, "SELECT MAX(version) FROM schema_migration") == [(2,)]
    assert run_cli(config, "users", "list", "--json").stdout.strip() == "[]"
    assert sqlite_rows(path, "SELECT MAX(version) FROM schema_migration") == [(LATEST_VERSION,)]


def test_a_migrate_waiting_for_the_file_goes_on_beside_another_migrate_and_waits_its_turn(
    tmp_path: Path,
) -> None:
    """Boxes of one release starting at once on one file: one found another's migration half
    done (an older schema, the file open elsewhere), waited, saw it move on and went on beside
    it, but still with no busy timeout (and the file's exclusive mode), so the other's next
    write transaction made it fail at once: "database is locked ... (waited 10 s ...)" and exit
    1 (test_two_processes_migrating_at_once... on a loaded machine). It now waits its turn."""
    path = tmp_path / "race.db"
    config = tmp_path / "codelace.toml"
    config.write_text(f'[database]\npath = "{path}"\n')
    db = open_database(path)  # the other migrate: the file open, version 2 reached
    migrate_up_to(db, 2)
    waiting = subprocess.Popen(
        [sys.executable, "-m", "codelace_box", "--config", str(config), "migrate"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
    )  # fmt: skip
    try:
        _wait_until_open(waiting.pid, path)
        time.sleep(1.0)  # it found version 2 and the file not its own: it waits
        with write_transaction():  # the other moves on a version ...
            MIGRATIONS[2][1].apply(db)
            SchemaMigration.create(version=MIGRATIONS[2][0], name=MIGRATIONS[2][1].NAME)
        db.execute_sql("BEGIN IMMEDIATE")  # ... and is in its next write a while
        time.sleep(2.0)
        db.execute_sql("COMMIT")
    finally:
        close_database()
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, (out, err)
    assert sqlite_rows(path, "SELECT MAX(version) FROM schema_migration") == [(LATEST_VERSION,)]


def test_two_migrates_waiting_for_an_older_serve_to_stop_both_finish(tmp_path: Path) -> None:
    """The upgrade's restart: the old serve stopping while two processes of the new release (its
    serve, the operator's `users list` or dashboard) wait to migrate. Each waited for the file
    to be its alone, the other's open connection among those it waited for: neither moved on
    once the old serve was gone, until one gave up after 10 s with "open in another process
    (the older codelace-box `serve` or `admin` still running?)", exit 1, and the other migrated.
    Migrates of one release now take turns: the second waits for the first, then finds the
    work done."""
    path, config, older = _served_by_an_older_release(tmp_path)
    command = [sys.executable, "-m", "codelace_box", "--config", str(config), "migrate"]
    try:
        assert older.stdout is not None and older.stdout.readline() == "open\n"
        runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=cli_env()) for _ in range(2)]  # fmt: skip
        for run in runs:  # the file, or (waiting for the other's turn) its migrate.lock
            _wait_until_open(run.pid, path, any_of_its_files=True)
        time.sleep(1.0)  # both found version 2 and the file not theirs alone: they wait
    finally:
        older.communicate("")  # the old serve stops
    outputs = [run.communicate(timeout=60) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert sqlite_rows(path, "SELECT MAX(version) FROM schema_migration") == [(LATEST_VERSION,)]


def _wait_until_open(pid: int, path: Path, any_of_its_files: bool = False) -> None:
    """Until process `pid` has the file `path` open (or, `any_of_its_files`, one whose name
    begins with it: its -wal, a lock file beside it), 30 s at most."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            fds = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
            if str(path) in fds or (any_of_its_files and any(f.startswith(str(path)) for f in fds)):
                return
        time.sleep(0.02)
    raise AssertionError(f"process {pid} never opened {path}")


def migrate_up_to(db: Any, version: int) -> None:
    """The database as a release at `version` left it (the later migrations not applied)."""
    db.create_tables([SchemaMigration])
    for number, module in MIGRATIONS[:version]:
        module.apply(db)
        SchemaMigration.create(version=number, name=module.NAME)


def test_migration_3_gives_every_existing_user_key_and_payment_its_own_uuid(db: Any) -> None:
    migrate_up_to(db, 2)
    now = "2026-01-01 00:00:00"
    for n in range(1, 4):
        db.execute_sql(
            'INSERT INTO "user" (email, display_name, status, balance_nanos, held_nanos, '
            "created_by_admin, created_at) VALUES (?, '', 'active', 0, 0, 0, ?)",
            (f"u{n}@example.com", now),
        )
        for k in range(2):
            db.execute_sql(
                "INSERT INTO api_key (user_id, name, key_prefix, key_hash, created_at) "
                "VALUES (?, '', 'cl_abcd', ?, ?)",
                (n, f"hash-{n}-{k}", now),
            )
        db.execute_sql(
            "INSERT INTO payment (user_id, amount_nanos, kind, status, currency, created_at) "
            "VALUES (?, 5, 'admin', 'completed', 'usd', ?)",
            (n, now),
        )
    assert migrate(db) == [version for version, _ in MIGRATIONS[2:]]
    for table, rows in (("user", 3), ("api_key", 6), ("payment", 3)):
        found = db.execute_sql(f'SELECT id, uuid FROM "{table}" ORDER BY id').fetchall()
        assert [row[0] for row in found] == list(range(1, rows + 1)), table  # ids unchanged
        uuids = [row[1] for row in found]
        assert all(is_uuid4(u) for u in uuids), uuids
        assert len(set(uuids)) == rows, table
        with pytest.raises(IntegrityError):  # the unique index holds them apart from now on
            db.execute_sql(f'UPDATE "{table}" SET uuid = ? WHERE id = 2', (uuids[0],))
    created = User.create(email="new@example.com")
    assert is_uuid4(created.uuid) and created.uuid not in {
        u.uuid for u in User.select().order_by(User.id).limit(3)
    }


def test_migration_12_keeps_what_every_key_shows_and_counts_open_holds_on_their_keys(
    db: Any,
) -> None:
    migrate_up_to(db, 11)
    now = "2026-01-01 00:00:00"
    db.execute_sql(
        'INSERT INTO "user" (id, uuid, email, display_name, status, balance_nanos, held_nanos, '
        "created_by_admin, created_at) VALUES (1, 'u1', 'a@example.com', '', 'active', 5000, 40, "
        "0, ?)",
        (now,),
    )
    for key_id, limit in ((1, None), (2, 9000)):  # no budget, a cap
        db.execute_sql(
            "INSERT INTO api_key (id, uuid, user_id, name, key_prefix, key_hash, created_at, "
            "limit_nanos, period_start, spent_nanos, held_nanos) VALUES (?, ?, 1, '', 'cl_abcd', "
            "?, ?, ?, ?, 700, ?)",
            (key_id, f"k{key_id}", f"hash-{key_id}", now, limit, now, 10 * key_id),
        )
        db.execute_sql(
            "INSERT INTO key_usage (api_key_id, user_id, requests, errors, input_tokens, "
            "output_tokens, cache_read_tokens, cache_write_tokens, cost_nanos) "
            "VALUES (?, 1, 1, 0, 0, 0, 0, 0, 1000)",
            (key_id,),
        )
        db.execute_sql(
            "INSERT INTO hold (user_id, amount_nanos, request_id, created_at, owner, api_key_id) "
            "VALUES (1, ?, ?, ?, 'h:1', ?)",
            (10 * key_id, f"r{key_id}", now, key_id),
        )
    assert migrate(db) == list(range(12, LATEST_VERSION + 1))
    keys = [ApiKey.get_by_id(key_id) for key_id in (1, 2)]
    assert [spent_in_period(key) for key in keys] == [700, 700]  # as shown before
    assert [key.usage_base_nanos for key in keys] == [300, 0]
    assert [h.key_held for h in Hold.select().order_by(Hold.id)] == [True, True]
    names = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'hold'"
    assert {r[0] for r in db.execute_sql(names).fetchall()} == {"hold_user_id", "hold_request_id"}


def test_migration_13_fills_each_accounts_days_from_its_usage_rows(db: Any) -> None:
    migrate_up_to(db, 12)
    for user_id in (1, 2):
        db.execute_sql(
            'INSERT INTO "user" (id, uuid, email, display_name, status, balance_nanos, '
            "held_nanos, created_by_admin, created_at) VALUES (?, ?, ?, '', 'active', 0, 0, 0, "
            "'2026-01-01 00:00:00')",
            (user_id, f"u{user_id}", f"{user_id}@example.com"),
        )
    rows = [  # user, when, status, input, output, cost
        (1, "2026-03-01 00:00:00.000000", "ok", 10, 2, 100),
        (1, "2026-03-01 23:59:59.999999", "error", 1, 0, 0),
        (1, "2026-03-02 12:00:00.000000", "ok", 5, 5, 7),
        (2, "2026-03-01 08:00:00.000000", "ok", 3, 4, 1000),
    ]
    for number, (user_id, when, status, tokens_in, tokens_out, cost) in enumerate(rows):
        db.execute_sql(
            "INSERT INTO usage_record (request_id, user_id, model, provider, upstream_model, "
            "input_tokens, output_tokens, input_per_1m_nanos, output_per_1m_nanos, cost_nanos, "
            "status, stream, estimated, duration_ms, created_at) "
            "VALUES (?, ?, 'p/m', 'p', 'm', ?, ?, 0, 0, ?, ?, 0, 0, 1, ?)",
            (f"req{number}", user_id, tokens_in, tokens_out, cost, status, when),
        )
    assert migrate(db) == list(range(13, LATEST_VERSION + 1))
    days = db.execute_sql(  # kept on since migration 22 as the sums of the accounts' key days
        "SELECT user_id, day, SUM(requests), SUM(errors), SUM(input_tokens), "
        "SUM(output_tokens), SUM(cost_nanos) FROM key_day_usage GROUP BY user_id, day "
        "ORDER BY user_id, day"
    ).fetchall()
    assert [tuple(row) for row in days] == [
        (1, "2026-03-01", 2, 1, 11, 2, 100),
        (1, "2026-03-02", 1, 0, 5, 5, 7),
        (2, "2026-03-01", 1, 0, 3, 4, 1000),
    ]


def test_migration_14_drops_the_usage_rows_index_by_key_and_keeps_the_rows(db: Any) -> None:
    migrate_up_to(db, 13)
    names = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage_record'"
    assert "usage_record_api_key_id" in {r[0] for r in db.execute_sql(names).fetchall()}
    db.execute_sql(
        'INSERT INTO "user" (id, uuid, email, display_name, status, balance_nanos, held_nanos, '
        "created_by_admin, created_at) VALUES (1, 'u1', 'a@example.com', '', 'active', 0, 0, 0, "
        "'2026-01-01 00:00:00')"
    )
    db.execute_sql(
        "INSERT INTO usage_record (request_id, user_id, model, provider, upstream_model, "
        "input_tokens, output_tokens, input_per_1m_nanos, output_per_1m_nanos, cost_nanos, "
        "status, stream, estimated, duration_ms, created_at) "
        "VALUES ('req1', 1, 'p/m', 'p', 'm', 1, 2, 0, 0, 3, 'ok', 0, 0, 1, '2026-03-01 00:00:00')"
    )
    assert migrate(db) == list(range(14, LATEST_VERSION + 1))
    left = {r[0] for r in db.execute_sql(names).fetchall()}
    assert left == {"usage_record_request_id", "usage_record_user_id", "usage_record_created_at"}
    rows = db.execute_sql("SELECT request_id, cost_nanos FROM usage_record").fetchall()
    assert [tuple(row) for row in rows] == [("req1", 3)]


def test_migration_16_lets_every_existing_key_keep_managing_keys(db: Any) -> None:
    migrate_up_to(db, 15)
    db.execute_sql(
        'INSERT INTO "user" (id, uuid, email, display_name, status, balance_nanos, held_nanos, '
        "created_by_admin, created_at) VALUES (1, 'u1', 'a@example.com', '', 'active', 0, 0, 0, "
        "'2026-01-01 00:00:00')"
    )
    for key_id, limit in ((1, None), (2, 9000)):  # a plain key and a capped one
        db.execute_sql(
            "INSERT INTO api_key (id, uuid, user_id, name, key_prefix, key_hash, created_at, "
            "limit_nanos) VALUES (?, ?, 1, '', 'cl_abcd', ?, '2026-01-01 00:00:00', ?)",
            (key_id, f"k{key_id}", f"hash-{key_id}", limit),
        )
    assert migrate(db) == list(range(16, LATEST_VERSION + 1))
    assert [k.can_manage_keys for k in ApiKey.select().order_by(ApiKey.id)] == [True, True]
    made = ApiKey.create(user=1, key_prefix="cl_efgh", key_hash="hash-3")
    assert ApiKey.get_by_id(made.id).can_manage_keys is True  # the model's default


def test_migration_18_keeps_every_payment_with_nothing_refunded(db: Any) -> None:
    migrate_up_to(db, 17)
    db.execute_sql(
        'INSERT INTO "user" (id, uuid, email, display_name, status, balance_nanos, held_nanos, '
        "created_by_admin, created_at) VALUES (1, 'u1', 'a@example.com', '', 'active', 0, 0, 0, "
        "'2026-01-01 00:00:00')"
    )
    for n, (kind, session) in enumerate((("topup", "cs_1"), ("trial", "cs_2"), ("admin", None))):
        db.execute_sql(
            "INSERT INTO payment (uuid, user_id, amount_nanos, kind, status, stripe_session_id, "
            "currency, created_at) VALUES (?, 1, 5, ?, 'completed', ?, 'usd', "
            "'2026-01-01 00:00:00')",
            (f"p{n}", kind, session),
        )
    assert migrate(db) == list(range(18, LATEST_VERSION + 1))
    rows = [(p.kind, p.payment_intent, p.refunded_nanos) for p in Payment.select()]
    assert sorted(rows) == [("admin", None, 0), ("topup", None, 0), ("trial", None, 0)]
    Payment.update(payment_intent="pi_1").where(Payment.kind == "topup").execute()
    with pytest.raises(IntegrityError):  # one PaymentIntent pays one top-up
        Payment.update(payment_intent="pi_1").where(Payment.kind == "trial").execute()
