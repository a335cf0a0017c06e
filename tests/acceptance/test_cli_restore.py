"""`codelace-box restore BACKUP`, from outside: refused while serve has the database open,
the backup checked as doctor checks it, the replaced file kept beside the database."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from codelace_box.db.migrate import LATEST_VERSION
from tests.acceptance.cli_tools import Box, error_line
from tests.support import ServerProcess, sqlite_rows

pytestmark = pytest.mark.timeout(120)


def balance(box: Box, email: str) -> float:
    return float(json.loads(box.ok("users", "show", email, "--json"))["credit_balance_usd"])


def test_restore_puts_the_backup_back_and_keeps_the_replaced_file(tmp_path: Path) -> None:
    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "ana@restore.test")
    box.ok("credit", "ana@restore.test", "5", "--reason", "first")
    box.ok("backup", "backups/one.db")
    box.ok("credit", "ana@restore.test", "3", "--reason", "after the backup")
    assert balance(box, "ana@restore.test") == 8

    out = box.ok("restore", "backups/one.db")
    assert "restored backups/one.db" in out and "kept as" in out
    assert balance(box, "ana@restore.test") == 5
    box.ok("doctor")
    [kept] = sorted((box.root / "data").glob("codelace.db.replaced-*"))
    rows = sqlite_rows(kept, 'SELECT balance_nanos FROM "user" WHERE email = ?',
                       ("ana@restore.test",))  # fmt: skip
    assert rows == [(8_000_000_000,)], "the replaced file keeps what happened after the backup"
    assert kept.stat().st_mode & 0o777 == 0o600
    assert not list((box.root / "data").glob("*.restoring*"))


def test_a_damaged_database_is_replaced_by_its_backup(tmp_path: Path) -> None:
    """The database a restore replaces is the damaged one, often: its first page overwritten
    made the restore fail with 'unexpected NotADBError' after checking the backup (the file
    was checkpointed before it was set aside), so a damaged database could not be restored
    at all. It is set aside as it is, its bytes kept for a look."""
    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "eve@restore.test")
    box.ok("credit", "eve@restore.test", "4", "--reason", "before the damage")
    box.ok("backup", "backups/good.db")
    with box.db_path.open("r+b") as damaged:
        damaged.write(b"not a database any more " * 8)
    damaged_bytes = box.db_path.read_bytes()
    assert "file is not a database" in box.fail("doctor")
    out = box.ok("restore", "backups/good.db")
    [kept] = sorted((box.root / "data").glob("codelace.db.replaced-*"))
    assert f"kept as {kept}" in out
    assert kept.read_bytes() == damaged_bytes
    assert box.ok("doctor").startswith(f"ok: schema version {LATEST_VERSION}")
    assert balance(box, "eve@restore.test") == 4


def test_restore_is_refused_while_serve_runs(tmp_path: Path) -> None:
    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "bo@restore.test")
    box.ok("backup", "backups/b.db")
    server = ServerProcess(box.config, box.port).start()
    try:
        refused = box.fail("restore", "backups/b.db")
        assert "open in a running" in refused and "serve" in refused
    finally:
        assert server.stop() == 0
    assert not list((box.root / "data").glob("codelace.db.replaced-*"))
    box.ok("restore", "backups/b.db")  # once serve has stopped


def test_a_restore_is_an_admin_action_in_the_restored_audit_log(tmp_path: Path) -> None:
    """The restored log ends where the backup's did, then says who restored what: the entries
    made after the backup are gone with the rest, but not silently."""
    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "audit@restore.test")
    box.ok("backup", "backups/a.db")
    box.ok("credit", "audit@restore.test", "3", "--reason", "after the backup")
    box.ok("restore", "backups/a.db")
    log = box.json("audit", "--json")
    assert [e["command"] for e in log] == ["users create", "restore"]
    restored = log[-1]
    assert restored["client"] == "cli" and restored["os_user"]
    assert restored["target"] == str(box.db_path)
    assert restored["after"]["backup"] == str((box.root / "backups" / "a.db").resolve())
    assert restored["after"]["schema_version"] == LATEST_VERSION
    assert restored["before"]["audit_entries"] == 3  # the replaced log: create, backup, credit
    assert box.ok("doctor").startswith("ok")


HOLD_OPEN = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
db.execute("SELECT count(*) FROM sqlite_master").fetchall()  # opened, as any reader leaves it
print("open", flush=True)
time.sleep(60)
"""


def test_restore_is_refused_while_another_program_has_the_database_open(tmp_path: Path) -> None:
    """Not only serve and admin: an operator's sqlite3 shell, a script or a second tool that
    has the file open would go on reading and writing the replaced file, so restore waits."""
    import subprocess
    import sys

    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "open@restore.test")
    box.ok("backup", "backups/b.db")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN, str(box.db_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        refused = box.fail("restore", "backups/b.db")
        assert "open in another program" in refused, refused
    finally:
        holder.kill()
        holder.wait(10)
    assert not list((box.root / "data").glob("codelace.db.replaced-*"))
    box.ok("restore", "backups/b.db")  # once it has closed the file


def test_a_bad_or_tampered_backup_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "cy@restore.test")
    box.ok("credit", "cy@restore.test", "2", "--reason", "credit")
    box.ok("backup", "backups/good.db")
    (box.root / "backups" / "junk.db").write_bytes(b"not a database at all" * 100)
    assert "junk.db is not a SQLite database" in box.fail("restore", "backups/junk.db")
    tamper = "UPDATE \"user\" SET balance_nanos = 1 WHERE email = 'cy@restore.test'"
    sqlite_rows(box.root / "backups" / "good.db", tamper)
    refused = box.fail("restore", "backups/good.db")
    assert "fails its check" in refused and "cy@restore.test" in refused
    assert "no backup at" in box.fail("restore", "backups/missing.db")
    assert balance(box, "cy@restore.test") == 2
    assert not list((box.root / "data").glob("codelace.db.replaced-*"))


def test_restore_on_postgresql_points_to_pg_restore(tmp_path: Path) -> None:
    box = Box.create(tmp_path / "box")
    box.ok("migrate")
    box.ok("backup", "backups/one.db")
    url = "postgresql://box:pw@127.0.0.1:1/codelace"  # never reached: the refusal comes first
    env = {"CODELACE_DATABASE_URL": url, "CODELACE_SERVER_SECRET_KEY": "k" * 64}
    line = box.fail("restore", "backups/one.db", env=env)
    assert "pg_restore" in line and "pw" not in line


def first_release_database(path: Path) -> None:
    """A database as the first release (schema version 2) left it: an account with credit,
    an API key and an open hold of a process that is gone."""
    from codelace_box.db.core import close_database, open_database
    from codelace_box.db.migrations import MIGRATIONS
    from codelace_box.db.models import SchemaMigration

    path.parent.mkdir(parents=True, exist_ok=True)
    db = open_database(path)
    try:
        db.create_tables([SchemaMigration])
        for number, module in MIGRATIONS[:2]:
            module.apply(db)
            SchemaMigration.create(version=number, name=module.NAME)
        now = "2026-01-01 00:00:00"
        db.execute_sql(
            'INSERT INTO "user" (email, display_name, status, balance_nanos, held_nanos, '
            "created_by_admin, created_at) VALUES ('old@restore.test', '', 'active', "
            "5000000000, 1000, 1, ?)",
            (now,),
        )
        db.execute_sql(
            "INSERT INTO ledger_entry (user_id, amount_nanos, kind, reason, idempotency_key, "
            "created_at) VALUES (1, 5000000000, 'admin', 'first', 'admin:1', ?)",
            (now,),
        )
        db.execute_sql(
            "INSERT INTO api_key (user_id, name, key_prefix, key_hash, created_at) "
            "VALUES (1, 'k1', 'cl_abcd', 'hash-1', ?)",
            (now,),
        )
        db.execute_sql(
            "INSERT INTO hold (user_id, amount_nanos, request_id, created_at, owner) "
            "VALUES (1, 1000, 'req_gone', ?, 'gone-host:1')",
            (now,),
        )
    finally:
        close_database()


def test_an_older_releases_database_gets_doctor_lines_restore_and_migrate(tmp_path: Path) -> None:
    """doctor on a first-release database says to migrate (it raised 'no such column'), restore
    of such a backup says to migrate before doctor, and once migrated everything checks."""
    box = Box.create(tmp_path / "box")
    first_release_database(box.db_path)
    result = box.cli("doctor")
    assert error_line(result) == "error: doctor found 1 problem(s)"
    assert result.stdout.splitlines() == [
        f"MISMATCH schema version 2, expected {LATEST_VERSION} (run migrate)"
    ]
    first_release_database(box.root / "backups" / "first.db")
    box.ok("migrate")
    box.ok("users", "create", "new@restore.test")
    out = box.ok("restore", "backups/first.db")
    assert "(schema version 2)" in out
    assert out.splitlines()[-2] == (
        "next: codelace-box migrate, then codelace-box doctor, then start the service"
    )
    assert "MISMATCH schema version 2" in box.cli("doctor").stdout
    box.ok("migrate")
    assert box.ok("doctor").startswith(f"ok: schema version {LATEST_VERSION}")
    assert balance(box, "old@restore.test") == 5
    assert [key["name"] for key in box.json("keys", "list", "old@restore.test")] == ["k1"]
    assert "new@restore.test" not in box.ok("users", "list")


def test_a_second_restore_in_the_same_second_keeps_both_replaced_files(tmp_path: Path) -> None:
    """The replaced database is named by the second; a restore within the same second as the
    one before (a script, or a wrong backup put right at once) replaced the first kept file,
    the only copy of what happened after the backups."""
    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "dee@restore.test")
    box.ok("backup", "backups/one.db")
    now = datetime.now(UTC)
    taken = {  # as if an earlier restore had kept its file in each of the next seconds
        box.db_path.with_name(
            f"codelace.db.replaced-{(now + timedelta(seconds=s)).strftime('%Y%m%dT%H%M%SZ')}"
        )
        for s in range(-1, 30)
    }
    for path in taken:
        path.write_bytes(b"kept by the restore before")
    out = box.ok("restore", "backups/one.db")
    [kept] = set(box.db_path.parent.glob("codelace.db.replaced-*")) - taken
    assert f"kept as {kept}" in out and kept.name.endswith("-2"), out
    assert sqlite_rows(kept, 'SELECT email FROM "user"') == [("dee@restore.test",)]
    assert all(path.read_bytes() == b"kept by the restore before" for path in taken)


def previous_release_database(path: Path) -> None:
    """A database as the release before this one left it (schema version LATEST - 1), its
    audit log holding one entry: the backup taken before an upgrade, as the rollback restores."""
    from codelace_box.audit import record
    from codelace_box.db.core import close_database, open_database, write_transaction
    from codelace_box.db.migrations import MIGRATIONS
    from codelace_box.db.models import SchemaMigration

    path.parent.mkdir(parents=True, exist_ok=True)
    db = open_database(path)
    try:
        db.create_tables([SchemaMigration])
        for number, module in MIGRATIONS[: LATEST_VERSION - 1]:
            module.apply(db)
            SchemaMigration.create(version=number, name=module.NAME)
        with write_transaction() as tx:
            record(tx, "cli", "users create", "before@restore.test", None, {"status": "active"})
    finally:
        close_database()


def test_a_rollback_restore_of_an_older_backup_is_in_its_audit_log(tmp_path: Path) -> None:
    """The README's rollback restores the backup taken before an upgrade (an older schema) with
    the new binary, then puts the old binary back: that restore wrote no audit entry at all
    (only a backup of this version's schema got one), so the log did not say that everything
    after the backup was replaced, or by whom. The entry is written into the backup's own log,
    its schema left as it was (the old binary must still open it)."""
    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "now@restore.test")
    backup = box.root / "backups" / "before-upgrade.db"
    previous_release_database(backup)
    out = box.ok("restore", str(backup))
    assert f"(schema version {LATEST_VERSION - 1})" in out
    assert sqlite_rows(box.db_path, "SELECT MAX(version) FROM schema_migration") == [
        (LATEST_VERSION - 1,)
    ]
    log = sqlite_rows(box.db_path, "SELECT command, target, after_state FROM audit_log ORDER BY id")
    assert [(command, target) for command, target, _ in log] == [
        ("users create", "before@restore.test"),
        ("restore", str(box.db_path)),
    ]
    assert json.loads(log[-1][2]) == {
        "backup": str(backup.resolve()),
        "schema_version": LATEST_VERSION - 1,
    }
    box.ok("migrate")
    assert box.ok("doctor").startswith(f"ok: schema version {LATEST_VERSION}")


# A process that dies in the middle of a write to a rollback-journal database: the pages it
# spilled into the file are in its `-journal`, which SQLite plays back at the next open.
CRASH_MID_WRITE = """
import os, sys, apsw
db = apsw.Connection(sys.argv[1])
db.execute("PRAGMA journal_mode=DELETE").fetchall()
db.execute("PRAGMA cache_size=1")
db.execute("BEGIN IMMEDIATE")
db.execute('UPDATE "user" SET display_name = hex(randomblob(2000))')
db.execute("CREATE TABLE filler(x)")
for _ in range(200):
    db.execute("INSERT INTO filler VALUES (randomblob(4000))")
os._exit(0)
"""


def leave_hot_journal(database: Path, journal: Path) -> None:
    """A hot rollback journal of `database` (a copy of it, written to and crashed) at
    `journal`, as a crash beside it would have left one."""
    scratch = database.with_name("crashed-writer.db")
    sqlite_rows(database, "PRAGMA wal_checkpoint(TRUNCATE)")  # the file holds every write
    shutil.copyfile(database, scratch)
    subprocess.run([sys.executable, "-c", CRASH_MID_WRITE, str(scratch)], check=True)
    hot = scratch.with_name(scratch.name + "-journal")
    assert hot.stat().st_size > 0, "the crash left no journal"
    hot.replace(journal)
    scratch.unlink()


def test_a_leftover_journal_is_not_played_back_into_the_restored_database(
    tmp_path: Path,
) -> None:
    """The database was moved away (to look at it after a crash) and its rollback journal left
    behind: restore put the backup in place beside that `-journal`, and SQLite played it back
    into the restored file at the next open (balance $8 against a ledger of $5: doctor failed
    on the file just restored). The journal is moved aside with the replaced database's name,
    as the -wal and -shm are."""
    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "joe@restore.test")
    box.ok("credit", "joe@restore.test", "5", "--reason", "first")
    box.ok("backup", "backups/one.db")
    box.ok("credit", "joe@restore.test", "3", "--reason", "after the backup")
    journal = box.db_path.with_name("codelace.db-journal")
    leave_hot_journal(box.db_path, journal)
    journal_bytes = journal.read_bytes()
    box.db_path.replace(tmp_path / "looked-at.db")

    out = box.ok("restore", "backups/one.db")
    assert not journal.exists()
    [kept] = sorted((box.root / "data").glob("codelace.db.replaced-*-journal"))
    assert kept.read_bytes() == journal_bytes
    assert f"{kept}" in out, out
    assert box.ok("doctor").startswith(f"ok: schema version {LATEST_VERSION}")
    assert balance(box, "joe@restore.test") == 5


def test_a_journal_left_by_a_killed_restore_does_not_spoil_the_next_one(tmp_path: Path) -> None:
    """A restore killed while it wrote its audit entry into the checked copy (a rollback-journal
    file, `codelace.db.restoring`) leaves that copy's `-journal`. The next restore removed the
    copy but not its journal, which SQLite played back into the new copy: the next restore
    refused a good backup ('the backup fails its check ... balance $8 != ledger sum $5')."""
    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "kim@restore.test")
    box.ok("credit", "kim@restore.test", "5", "--reason", "first")
    box.ok("backup", "backups/one.db")
    box.ok("credit", "kim@restore.test", "3", "--reason", "after the backup")
    leave_hot_journal(box.db_path, box.db_path.with_name("codelace.db.restoring-journal"))

    box.ok("restore", "backups/one.db")
    assert box.ok("doctor").startswith(f"ok: schema version {LATEST_VERSION}")
    assert balance(box, "kim@restore.test") == 5
    assert not list((box.root / "data").glob("*.restoring*"))


def test_a_restored_backups_holds_are_released_though_their_pid_lives_again(
    tmp_path: Path,
) -> None:
    """A backup taken while serve had requests in flight holds their holds, owned by that
    serve's pid. Restored on a machine where that pid is alive again (another program's now),
    the holds stayed: serve's start frees only holds of ended processes, so the user's credit
    stayed held for 6 hours (until they aged out). A restored backup's holds belong to no
    running box (restore refuses while one has the database open): restore releases them."""
    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "hal@restore.test")
    box.ok("credit", "hal@restore.test", "5", "--reason", "first")
    other_program = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owner = f"{socket.gethostname()}:{other_program.pid}:0badc0de"
        box.sql(
            "INSERT INTO hold (user_id, amount_nanos, request_id, created_at, owner) "
            "SELECT id, 2000000000, 'req_in_flight', ?, ? FROM \"user\"",
            (datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"), owner),
        )
        box.sql('UPDATE "user" SET held_nanos = 2000000000')
        box.ok("backup", "backups/busy.db")
        box.sql("DELETE FROM hold")  # the requests settled after the backup
        box.sql('UPDATE "user" SET held_nanos = 0')

        box.ok("restore", "backups/busy.db")
        assert box.sql("SELECT count(*) FROM hold") == [(0,)]
        shown = json.loads(box.ok("users", "show", "hal@restore.test", "--json"))
        assert (shown["credit_balance_usd"], shown["held_usd"]) == (5, 0)
        box.ok("doctor")
    finally:
        other_program.kill()
        other_program.wait()


def test_an_older_backups_holds_are_left_to_serve_as_owned_by_no_process(tmp_path: Path) -> None:
    """In an older release's backup (not migrated by restore) the holds are marked as owned
    by no process, which serve's start (after migrating) releases whoever has the pid now."""
    box = Box.create(tmp_path / "box")
    backup = box.root / "backups" / "before-upgrade.db"
    previous_release_database(backup)
    live_pid = os.getpid()  # this test's own process: alive, not the box's
    sqlite_rows(backup, 'INSERT INTO "user" (uuid, email, display_name, status, balance_nanos, '
                "held_nanos, created_by_admin, created_at) VALUES (?, ?, '', 'active', 0, 7, 1, "
                "'2026-01-01 00:00:00')", ("7f0c2a7e-0000-4000-8000-000000000001",
                                           "old@restore.test"))  # fmt: skip
    sqlite_rows(backup, "INSERT INTO hold (user_id, amount_nanos, request_id, created_at, owner) "
                "SELECT id, 7, 'req_old', '2026-01-01 00:00:00', ? FROM \"user\"",
                (f"{socket.gethostname()}:{live_pid}:0badc0de",))  # fmt: skip
    box.ok("restore", str(backup))
    assert box.sql("SELECT owner FROM hold") == [("",)]


def test_a_backup_is_not_written_beside_a_leftover_journal(tmp_path: Path) -> None:
    """A backup written to a name whose `-journal` was left there (a file of that name deleted
    after a crash) got that journal: restoring it failed with 'the file or its disk is
    read-only' (SQLite must play a hot journal back before reading), and any program that
    opened it to write played the other file's pages into it. The backup is refused, saying
    which file is in the way, and nothing is written."""
    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "lee@restore.test")
    journal = box.root / "backups" / "one.db-journal"
    journal.parent.mkdir()
    leave_hot_journal(box.db_path, journal)
    refused = box.fail("backup", "backups/one.db")
    assert "one.db-journal is a leftover" in refused, refused
    assert sorted(p.name for p in journal.parent.iterdir()) == ["one.db-journal"]


def test_a_database_that_is_a_link_is_restored_where_the_link_points(tmp_path: Path) -> None:
    """An operator who keeps the database on another disk, `data/codelace.db` a symbolic link
    to it: the restore replaced the link with a file on the link's own disk (the database
    moved off its disk unsaid), and kept only the link as the 'replaced database'. It is
    written through, as `init` writes a linked config: the link stays, the file it names is
    replaced, and the replaced file is kept beside it."""
    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "lin@restore.test")
    box.ok("credit", "lin@restore.test", "5", "--reason", "first")
    volume = tmp_path / "volume"
    volume.mkdir()
    real = volume / "codelace.db"
    for suffix in ("", "-wal", "-shm"):  # the database as it is, moved to the other disk
        if Path(f"{box.db_path}{suffix}").exists():
            shutil.move(f"{box.db_path}{suffix}", f"{real}{suffix}")
    box.db_path.symlink_to(real)
    box.ok("backup", "backups/one.db")
    box.ok("credit", "lin@restore.test", "3", "--reason", "after the backup")

    out = box.ok("restore", "backups/one.db")
    assert box.db_path.is_symlink() and box.db_path.resolve() == real
    assert balance(box, "lin@restore.test") == 5
    [kept] = sorted(volume.glob("codelace.db.replaced-*"))
    assert f"kept as {kept}" in out
    assert not kept.is_symlink()
    rows = sqlite_rows(kept, 'SELECT balance_nanos FROM "user" WHERE email = ?',
                       ("lin@restore.test",))  # fmt: skip
    assert rows == [(8_000_000_000,)]
    assert not list((box.root / "data").glob("codelace.db.replaced-*"))
    box.ok("doctor")


@pytest.mark.parametrize("name", ["codelace.db.restoring", "codelace.db.restoring.partial"])
def test_a_backup_named_as_restores_scratch_copy_is_refused_and_kept(
    tmp_path: Path, name: str
) -> None:
    """A backup at the name restore gives its own copy (`<database>.restoring`, say one a
    killed restore left, checked and whole) was deleted as a leftover before it was read: the
    restore then failed with 'cannot write the backup ...' and the backup was gone."""
    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "scratch@restore.test")
    box.ok("backup", f"data/{name}")
    kept = (box.root / "data" / name).read_bytes()
    refused = box.fail("restore", f"data/{name}")
    assert "another name" in refused, refused
    assert (box.root / "data" / name).read_bytes() == kept
    assert not list((box.root / "data").glob("codelace.db.replaced-*"))


def test_a_backup_with_an_unfinished_write_beside_it_is_refused_naming_the_backup(
    tmp_path: Path,
) -> None:
    """A backup copied with its -journal while a program wrote it (the write never finished):
    the refusal blamed the target ('cannot write the backup to ...codelace.db.restoring: the
    file or its disk is read-only'), not the backup and its journal."""
    import sqlite3

    box = Box.create(tmp_path / "box")
    box.ok("users", "create", "journal@restore.test")
    box.ok("backup", "backups/b.db")
    source = box.root / "backups" / "b.db"
    writer = sqlite3.connect(source, isolation_level=None)
    writer.execute("PRAGMA cache_size = 1")  # the write spills into the file: a hot journal
    writer.execute("BEGIN")
    writer.execute("CREATE TABLE filler (x BLOB)")
    for _ in range(500):
        writer.execute("INSERT INTO filler VALUES (randomblob(1000))")
    copy = box.root / "backups" / "copied.db"
    shutil.copy(source, copy)
    shutil.copy(source.with_name("b.db-journal"), copy.with_name("copied.db-journal"))
    writer.execute("ROLLBACK")
    writer.close()
    refused = box.fail("restore", "backups/copied.db")
    assert "copied.db-journal" in refused and "restoring" not in refused, refused
    assert not list((box.root / "data").glob("codelace.db.replaced-*"))
