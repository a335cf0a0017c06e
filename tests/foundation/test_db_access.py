"""db/core.py's one way to write, on a real SQLite file: the write lock taken at BEGIN, nested
transactions as savepoints (peewee's own atomic() included), the group commit's 503 when
another process holds the lock, and no engine import outside db/."""

from __future__ import annotations

import ast
import asyncio
import contextlib
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import apsw
import pytest

from codelace_box.accounts.keys import authenticate, create_key
from codelace_box.accounts.users import create_user
from codelace_box.billing.ledger import post_entry
from codelace_box.db.batch import WriteBatch
from codelace_box.db.core import (
    close_database,
    database,
    durable,
    open_database,
    query_all,
    query_one,
    write_transaction,
)
from codelace_box.db.failures import is_busy
from codelace_box.db.migrate import migrate
from codelace_box.db.models import User
from codelace_box.errors import ServiceUnavailable
from codelace_box.gateway.admission import Admission
from codelace_box.gateway.metering import admit_in, admit_steps
from tests.support import REPO_ROOT

ENGINE_MODULES = ("apsw", "playhouse.apsw_ext", "sqlite3", "psycopg")
ENGINE_USERS = ("codelace_box", "admin_tui", "bench")
ENGINE_CALLS = frozenset({"execute_sql", "cursor"})  # peewee's and a DB-API's raw doors


def other_writer(path: Path) -> apsw.Connection:
    """Another connection to the file (apsw's own SQLite: the stdlib's sqlite3 is a second copy
    of the library, whose locks this process's apsw connection would not see)."""
    other = apsw.Connection(str(path))
    other.setbusytimeout(0)
    return other


@contextlib.contextmanager
def write_lock_held_elsewhere(path: Path) -> Iterator[None]:
    """Another process holds the write lock meanwhile; this one waits at most 50 ms for it."""
    database.execute_sql("PRAGMA busy_timeout = 50")
    other = other_writer(path)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def names(user_ids: list[int]) -> list[str]:
    marks = ",".join("?" * len(user_ids))
    rows = query_all(f'SELECT display_name FROM "user" WHERE id IN ({marks}) ORDER BY id', user_ids)
    return [row[0] for row in rows]


def rename(user_id: int, name: str) -> None:
    User.update(display_name=name).where(User.id == user_id).execute()


def test_a_nested_write_transaction_rolls_back_alone(migrated_db: Path) -> None:
    first, second = create_user("nest-a@db.test"), create_user("nest-b@db.test")
    with write_transaction():
        rename(first.id, "kept")
        with pytest.raises(RuntimeError), write_transaction():
            rename(second.id, "rolled back")
            raise RuntimeError("the inner one fails")
        with write_transaction() as tx:
            tx.execute('UPDATE "user" SET display_name = ? WHERE id = ?', ("inner kept", second.id))
    assert names([first.id, second.id]) == ["kept", "inner kept"]


def test_durable_works_inside_a_plain_write_transaction(migrated_db: Path) -> None:
    """A key minted inside an audited (plain) transaction: its COMMIT is the durable one; the
    connection's own setting stays NORMAL (SQLite refuses to switch it inside a transaction)."""
    first, second = create_user("durable-a@db.test"), create_user("durable-b@db.test")
    with write_transaction():
        rename(first.id, "outer")
        with durable():
            rename(second.id, "inner")
    assert names([first.id, second.id]) == ["outer", "inner"]
    with contextlib.suppress(RuntimeError), write_transaction(), durable():
        rename(first.id, "lost")
        raise RuntimeError("rolled back: nothing of it stays")
    assert names([first.id, second.id]) == ["outer", "inner"]
    assert query_one("PRAGMA synchronous")[0] == 1  # NORMAL


def test_peewee_atomic_nests_inside_a_write_transaction(migrated_db: Path) -> None:
    """What peewee's get_or_create and schema migrations open themselves becomes a savepoint."""
    user = create_user("atomic@db.test")
    with write_transaction():
        assert database.in_transaction()
        with pytest.raises(RuntimeError), database.atomic():
            rename(user.id, "gone")
            raise RuntimeError("peewee's block fails")
        with database.atomic():
            rename(user.id, "peewee")
    assert not database.in_transaction()
    assert names([user.id]) == ["peewee"]


def test_the_write_lock_is_taken_at_begin(migrated_db: Path) -> None:
    other = other_writer(migrated_db)
    try:
        # nothing written yet inside: IMMEDIATE holds the lock already
        with write_transaction(), pytest.raises(apsw.BusyError):
            other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # released at COMMIT
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_the_group_commit_answers_503_while_another_process_writes(
    migrated_db: Path,
) -> None:
    user = create_user("busy@db.test")
    post_entry(user.id, 10_000, "admin", "seed", "seed-busy")
    batch = WriteBatch()
    with write_lock_held_elsewhere(migrated_db):
        refused = batch.submit(partial(admit_in, user_id=user.id, request_id="r1", amount_nanos=5))
        with pytest.raises(ServiceUnavailable) as caught:
            await asyncio.wait_for(refused, 5)
        assert (caught.value.status, caught.value.code) == (503, "database_busy")
    await asyncio.wait_for(
        batch.submit(partial(admit_in, user_id=user.id, request_id="r2", amount_nanos=5)), 5
    )
    assert query_one("SELECT COUNT(*) FROM hold") == (1,)


async def test_a_batch_that_finds_the_database_busy_fails_once_without_a_careful_run(
    migrated_db: Path,
) -> None:
    """A batch of several writes that cannot begin (another process holds the write lock past
    the busy timeout) is a 503 for each of them, at once: no write failed, so no second run
    in savepoints waits out the timeout again, and the next batches start in turns."""
    user = create_user("busy-batch@db.test")
    post_entry(user.id, 10_000, "admin", "seed", "seed-busy-batch")
    batch = WriteBatch()
    with write_lock_held_elsewhere(migrated_db):
        writes = [
            batch.submit(partial(admit_in, user_id=user.id, request_id=f"b{n}", amount_nanos=5))
            for n in range(2)
        ]
        failed = await asyncio.wait_for(asyncio.gather(*writes, return_exceptions=True), 5)
        assert [getattr(e, "code", e) for e in failed] == ["database_busy"] * 2
        assert batch.careful_left == 0


def frames_left_behind(path: Path) -> int:
    """Another connection writes a row, then checkpoints: the WAL frames it could not copy
    into the database, which only a read still open on this process's connection holds back."""
    other = other_writer(path)
    try:
        other.execute("INSERT INTO rate_event (bucket, created_at) VALUES ('probe', 'now')")
        _, log, copied = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0]
        return int(log - copied)
    finally:
        other.close()


async def test_the_request_path_leaves_no_read_open_between_requests(migrated_db: Path) -> None:
    """The key lookup and the group commit's writes run through one kept cursor
    (core.Statements): a read it left part-read would hold its snapshot until the cursor's
    next statement, between requests too, so a checkpoint could not finish (and a later
    BEGIN IMMEDIATE would start on a stale snapshot)."""
    user = create_user("kept-cursor@db.test")
    post_entry(user.id, 10_000, "admin", "seed", "seed-kept-cursor")
    full_key = create_key(user.id).full_key
    authenticate(full_key)  # notes the key's use: a write
    auth = authenticate(full_key)  # a lookup alone
    assert frames_left_behind(migrated_db) == 0
    batch = WriteBatch()
    limits = Admission(key_id=auth.key_id, max_concurrent=5, rpm=50, key_budgeted=False)
    admit = partial(admit_steps, user_id=user.id, request_id="kc1", amount_nanos=5, limits=limits)
    await asyncio.wait_for(batch.submit(admit), 5)  # the account limits' counts: reads
    assert frames_left_behind(migrated_db) == 0


def test_is_busy_knows_a_lock_timeout_from_other_errors(migrated_db: Path) -> None:
    database.execute_sql("PRAGMA busy_timeout = 0")
    other = other_writer(migrated_db)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(apsw.BusyError) as caught, write_transaction():
            pass
        assert is_busy(caught.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert not is_busy(RuntimeError("database is locked"))


def outside_db() -> list[Path]:
    """Every module of the box, its dashboard and the benchmark, but those of db/."""
    paths = [p for root in ENGINE_USERS for p in sorted((REPO_ROOT / root).rglob("*.py"))]
    return [p for p in paths if (REPO_ROOT / "codelace_box" / "db") not in p.parents]


def test_no_module_outside_db_imports_the_engine() -> None:
    offenders = []
    for path in outside_db():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            offenders += [
                f"{path.relative_to(REPO_ROOT)}: {m}"
                for m in modules
                if m.split(".")[0] in ENGINE_MODULES or m in ENGINE_MODULES
            ]
    assert offenders == []


def test_no_module_outside_db_runs_sql_on_the_engine_itself() -> None:
    """SQL outside db/ goes through query_all/query_one/a Tx, never the engine's execute_sql
    or a cursor (a second way that a second engine would have to find)."""
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {node.attr}"
        for path in outside_db()
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Attribute) and node.attr in ENGINE_CALLS
    ]
    assert offenders == []


def test_writes_follow_the_database_opened_last(tmp_path: Path) -> None:
    """core reads the database the proxy stands for without the proxy (its `__getattr__` hook
    cost 580 instructions a read): a second open_database() (db copy's destination, a test's
    next file) is where the next write transaction, the kept cursor and peewee's
    `in_transaction()` go, and the first file keeps what it had."""
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    try:
        migrate(open_database(first))
        create_user("first@db.test")
        close_database()
        migrate(open_database(second))
        with write_transaction(kept_cursor=True) as tx:
            assert database.in_transaction()
            tx.execute('UPDATE "user" SET display_name = ?', ("none here",))
            assert tx.changes() == 0  # the second file has no user yet
        create_user("second@db.test")
        assert [row[0] for row in query_all('SELECT email FROM "user"')] == ["second@db.test"]
        assert not database.in_transaction()
    finally:
        close_database()
    check = apsw.Connection(str(first))
    try:
        emails = [row[0] for row in check.execute('SELECT email FROM "user"')]
    finally:
        check.close()
    assert emails == ["first@db.test"]
