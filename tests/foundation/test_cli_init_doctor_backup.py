"""`init`, `doctor` and `backup` as an operator runs them: a private config that keeps the
secret in use, doctor naming a tampered account, and backups taken while another process
writes restoring to a consistent database."""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from codelace_box.config import load_config
from codelace_box.crypto import decrypt_secret
from codelace_box.db.migrate import LATEST_VERSION
from tests.foundation.conftest import Workspace, make_workspace, one_error_line
from tests.support import PROGRAM, REPO_ROOT, cli_env, run_cli


def test_init_writes_a_private_commented_config_once(tmp_path: Path) -> None:
    result = run_cli(None, "init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    target = tmp_path / "codelace.toml"
    assert result.stdout.splitlines() == [
        "wrote codelace.toml (a new server.secret_key; mode 600, keep it private)",
        "next: edit it if you like, then run: codelace-box --config codelace.toml serve",
    ]
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    text = target.read_text()
    assert "# port = 8080" in text and "# [server]" not in text
    secret = load_config(str(target), {}).server.secret_key
    assert len(secret) >= 40
    again = run_cli(None, "init", cwd=tmp_path)
    assert again.returncode == 1
    assert one_error_line(again.stderr) == (
        "error: codelace.toml already exists (use --force to overwrite)"
    )
    assert target.read_text() == text
    forced = run_cli(None, "init", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "kept the server secret in use from codelace.toml" in forced.stdout
    assert load_config(str(target), {}).server.secret_key == secret
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codelace.toml"]


@pytest.mark.parametrize("secret", ["env-secret-0123456789\n", "env-secret\x7f0123456789"])
def test_init_keeps_a_secret_from_the_environment_in_a_file_that_loads(
    tmp_path: Path, secret: str
) -> None:
    """The secret in use set by CODELACE_SERVER_SECRET_KEY (an env file's value with its line
    break): init writes it into a codelace.toml that serve can read back, and says it came
    from that variable (not from "built-in defaults")."""
    env = {"CODELACE_SERVER_SECRET_KEY": secret}
    result = run_cli(None, "init", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "kept the server secret in use from env CODELACE_SERVER_SECRET_KEY" in result.stdout
    assert "built-in defaults" not in result.stdout
    assert load_config(str(tmp_path / "codelace.toml"), {}).server.secret_key == secret


def test_init_force_keeps_the_files_secret_under_an_empty_secret_variable(tmp_path: Path) -> None:
    """An empty CODELACE_SERVER_SECRET_KEY (docker compose's unset `${SECRET}`), which serve
    refuses, made `init --force` take no secret as in use: the file's secret, which stored
    provider keys need, was replaced by a fresh one."""
    target = tmp_path / "codelace.toml"
    target.write_text('[server]\nsecret_key = "file-secret-0123456789"\n')
    result = run_cli(None, "init", "--force", env={"CODELACE_SERVER_SECRET_KEY": ""}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "kept the server secret in use from codelace.toml" in result.stdout, result.stdout
    assert load_config(str(target), {}).server.secret_key == "file-secret-0123456789"


def test_init_keeps_the_secret_an_earlier_start_generated(tmp_path: Path) -> None:
    """`make serve` first, `init` later: provider keys stored meanwhile stay readable."""
    added = run_cli(
        None, "providers", "add", "early", "--kind", "openai", "--key", "sk-early-0123456789",
        cwd=tmp_path,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    generated = (tmp_path / "data" / "secret_key").read_text().strip()
    result = run_cli(None, "init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"kept the server secret in use from {tmp_path / 'data' / 'secret_key'}" in (
        result.stdout
    )
    config = load_config(str(tmp_path / "codelace.toml"), {})
    assert config.server.secret_key == generated
    space = Workspace(tmp_path, tmp_path / "codelace.toml")
    (token,) = space.sql("SELECT key_encrypted FROM provider_key")[0]
    assert decrypt_secret(config.server.secret_key, bytes(token)) == "sk-early-0123456789"


def test_init_of_a_config_in_another_folder_keeps_that_folders_secret(tmp_path: Path) -> None:
    """`--config box/codelace.toml init` run from elsewhere: the written file's database is
    box/data/codelace.db (a relative path is the file's folder's), so the secret in use is the
    one a start generated into box/data, not one in the working folder's data/."""
    box, elsewhere = tmp_path / "box", tmp_path / "elsewhere"
    for folder in (box, elsewhere):
        folder.mkdir()
        added = run_cli(
            None, "providers", "add", "early", "--kind", "openai", "--key", "sk-early-0123456789",
            cwd=folder,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
    result = run_cli(box / "codelace.toml", "init", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert f"kept the server secret in use from {box / 'data' / 'secret_key'}" in result.stdout
    config = load_config(str(box / "codelace.toml"), {})
    assert config.server.secret_key == (box / "data" / "secret_key").read_text().strip()
    doctor = run_cli(box / "codelace.toml", "doctor", cwd=elsewhere)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


@pytest.mark.parametrize(
    "breakage",
    ["\n[sever]\nport = 9000\n", "\n[server\n", "wal = 1\n", f"error_rate = {'1' * 4301}\n"],
    ids=["unknown-section", "not-toml", "unknown-key-beside-a-custom-path", "too-long-integer"],
)
def test_init_force_over_a_config_that_fails_to_load_keeps_its_secret(
    tmp_path: Path, breakage: str
) -> None:
    """A typo in codelace.toml, then `init --force` to start over: the secret in the file
    (or in the data folder the file named) must survive, or every stored provider key is lost."""
    assert run_cli(None, "init", cwd=tmp_path).returncode == 0
    target = tmp_path / "codelace.toml"
    if breakage == "wal = 1\n":  # the secret generated into the data folder the file names
        target.write_text("[database]\npath = 'db/x.db'\n")
    added = run_cli(
        target, "providers", "add", "p", "--kind", "openai", "--key", "sk-kept-0123456789"
    )
    assert added.returncode == 0, added.stderr
    secret = load_config(str(target), {}).server.secret_key or (
        (tmp_path / "db" / "secret_key").read_text().strip()
    )
    target.write_text(target.read_text() + breakage)
    assert run_cli(target, "providers", "list").returncode == 1  # it no longer loads
    forced = run_cli(None, "init", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "a new server.secret_key" not in forced.stdout, forced.stdout
    assert load_config(str(target), {}).server.secret_key == secret


@pytest.mark.parametrize(
    ("start", "broken"),
    [
        ("", "[database]\nurl = 'mysql://db.example/box'\n"),  # a bad value beside the secret
        ("[database]\npath = 'db/x.db'\n", "[database]\npath = 'db/x.db'\n[server\n"),
    ],
    ids=["bad-database-url", "not-toml-with-a-custom-path"],
)
def test_init_force_keeps_the_secret_whatever_else_is_broken(
    tmp_path: Path, start: str, broken: str
) -> None:
    """A bad database.url must not cost the secret beside it in [server]; a file that is not
    TOML any more still names the data folder whose secret_key file is in use."""
    assert run_cli(None, "init", cwd=tmp_path).returncode == 0
    target = tmp_path / "codelace.toml"
    if start:
        target.write_text(start)
    secret = load_config(str(target), {}).server.secret_key
    if not secret:
        added = run_cli(target, "providers", "add", "p", "--kind", "openai", "--key", "sk-k-012345")
        assert added.returncode == 0, added.stderr  # the secret generated into db/
        secret = (tmp_path / "db" / "secret_key").read_text().strip()
    kept = "".join(line + "\n" for line in target.read_text().splitlines() if "secret" in line)
    target.write_text(("[server]\n" + kept if kept else "") + broken)
    assert run_cli(target, "providers", "list").returncode == 1  # it no longer loads
    forced = run_cli(None, "init", "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "a new server.secret_key" not in forced.stdout, forced.stdout
    assert load_config(str(target), {}).server.secret_key == secret


def test_init_under_a_secret_variable_that_is_not_utf8_leaves_nothing(tmp_path: Path) -> None:
    """One line naming the variable, and no temporary file beside the config (the write failed
    half-way: an empty `.codelace.toml.*.tmp` was left, and the error quoted the file's text)."""
    env = cli_env({"CODELACE_SERVER_SECRET_KEY": "abc\udcff"})  # the byte 0xff, as passed on
    result = subprocess.run(
        [*PROGRAM, "init"], capture_output=True, text=True, env=env, cwd=tmp_path, check=False
    )
    assert result.returncode == 1
    assert one_error_line(result.stderr) == (
        "error: env CODELACE_SERVER_SECRET_KEY: server.secret_key must be UTF-8 text, and it is not"
    )
    assert list(tmp_path.iterdir()) == []


def test_init_honours_config_and_reports_unwritable_targets(tmp_path: Path) -> None:
    env_target = tmp_path / "from-env.toml"
    result = run_cli(None, "init", cwd=tmp_path, env={"CODELACE_CONFIG": str(env_target)})
    assert result.returncode == 0 and env_target.is_file(), result.stderr
    flag_target = tmp_path / "flag.toml"
    assert run_cli(flag_target, "init", cwd=tmp_path).returncode == 0
    assert flag_target.is_file()
    missing_dir = tmp_path / "no" / "such" / "dir.toml"
    failed = run_cli(missing_dir, "init", cwd=tmp_path)
    assert failed.returncode == 1
    assert "cannot write: No such file or directory" in one_error_line(failed.stderr)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    inside_a_file = run_cli(blocker / "codelace.toml", "init", cwd=tmp_path)
    assert inside_a_file.returncode == 1
    line = one_error_line(inside_a_file.stderr)
    assert line == f"error: {blocker / 'codelace.toml'}: cannot write: Not a directory", line


def test_doctor_passes_on_a_healthy_database(workspace: Workspace) -> None:
    workspace.run("users", "create", "healthy@example.com")
    workspace.run("credit", "healthy@example.com", "3", "--reason", "seed")
    # the README's upgrade step: a copy beside the data (not one doctor knows of)
    workspace.run("backup", str(workspace.root / "backups" / "before-upgrade-20261207.db"))
    first, backups = workspace.run("doctor").stdout.splitlines()
    assert first == f"ok: schema version {LATEST_VERSION}, every balance matches its ledger"
    folder = workspace.root / "data" / "backups"
    assert backups == (
        f"backups: no scheduled backup in {folder} (scheduled backups: off "
        "(backup.every_hours = 0); doctor looks there for their codelace-<UTC time>.db files "
        "only, not for copies `codelace-box backup` wrote elsewhere)"
    ), backups


def test_doctor_needs_an_existing_database_and_creates_none(fresh_workspace: Workspace) -> None:
    message = fresh_workspace.fail("doctor")
    assert "no database at" in message and "run `codelace-box migrate`" in message
    assert not fresh_workspace.db_path.exists()


def test_doctor_names_an_account_whose_balance_was_tampered_with(workspace: Workspace) -> None:
    workspace.run("users", "create", "tampered@example.com")
    workspace.run("credit", "tampered@example.com", "10", "--reason", "seed")
    workspace.sql(
        "UPDATE \"user\" SET balance_nanos = balance_nanos + 1 WHERE email = 'tampered@example.com'"
    )
    result = run_cli(workspace.config, "doctor")
    assert result.returncode == 1
    assert one_error_line(result.stderr) == "error: doctor found 1 problem(s)"
    (line,) = result.stdout.splitlines()
    user_id = workspace.json("users", "show", "tampered@example.com")["id"]
    assert line.startswith(f"MISMATCH account tampered@example.com (id {user_id}): ")
    assert line.endswith("balance $10.000000001 != ledger sum $10.000000000")
    workspace.sql(
        "UPDATE \"user\" SET balance_nanos = balance_nanos - 1 WHERE email = 'tampered@example.com'"
    )
    workspace.run("doctor")


def test_doctor_names_a_file_too_damaged_to_read_through(fresh_workspace: Workspace) -> None:
    """`doctor` checks the file's integrity: where SQLite's own check could not read the file
    through (a few pages overwritten: a disk fault, a copy cut short), it said `error:
    unexpected CorruptError: database disk image is malformed`, the words of a crash asking
    for a bug report, and named no problem, just when the operator needed its verdict."""
    _damage(fresh_workspace)
    result = run_cli(fresh_workspace.config, "doctor")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "unexpected" not in result.stderr, result.stderr
    assert one_error_line(result.stderr) == "error: doctor found 1 problem(s)"
    (line,) = [text for text in result.stdout.splitlines() if text.startswith("MISMATCH")]
    assert line == (
        "MISMATCH database integrity: database disk image is malformed (SQLite cannot read "
        'the file through: restore a backup, README "Restore")'
    ), line


def _damage(workspace: Workspace) -> None:
    """Overwrite two pages in the middle of a box's database of its own (an account in it)."""
    workspace.run("migrate")
    workspace.run("users", "create", "damaged@example.com")
    workspace.sql("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the file itself
    page = 4096
    data = bytearray(workspace.db_path.read_bytes())
    assert len(data) > 8 * page
    data[4 * page : 6 * page] = bytes((i * 7 + 3) % 256 for i in range(2 * page))
    workspace.db_path.write_bytes(data)


def test_doctor_prefixes_every_line_of_an_integrity_problem(fresh_workspace: Workspace) -> None:
    """SQLite's integrity check answers rows of several lines (`*** in database main ***` then
    `Page 75: never used`): only the first got `MISMATCH`, the rest looked like lines of
    their own. Damage it reads through: a page past the tables, counted in the header."""
    workspace = fresh_workspace
    workspace.run("migrate")
    workspace.sql("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the file itself
    data = bytearray(workspace.db_path.read_bytes())
    size, pages = int.from_bytes(data[16:18], "big"), int.from_bytes(data[28:32], "big")
    data += bytes(size)
    data[28:32] = (pages + 1).to_bytes(4, "big")  # the header counts the page nothing uses
    workspace.db_path.write_bytes(data)
    result = run_cli(workspace.config, "doctor")
    assert result.returncode == 1, (result.stdout, result.stderr)
    shown = result.stdout.splitlines()  # no Stripe setting: nothing but the problems
    assert any(f"Page {pages + 1}" in line and "never used" in line for line in shown), shown
    assert all(line.startswith("MISMATCH database integrity: ") for line in shown), shown
    assert not any("*** in database main ***" in line for line in shown), shown  # no news


def test_a_command_on_a_damaged_file_says_so_and_what_to_do(fresh_workspace: Workspace) -> None:
    """Any other command meeting a damaged page said `error: unexpected DatabaseError:
    database disk image is malformed` (`users list`), a crash's words: it says the file is
    damaged and what to run, in one line, exit 1."""
    _damage(fresh_workspace)
    assert fresh_workspace.fail("users", "list") == (
        "error: the database file is damaged (database disk image is malformed): "
        '`codelace-box doctor` checks it; restore a backup (README "Restore")'
    )


def test_doctor_names_an_account_whose_holds_do_not_add_up(workspace: Workspace) -> None:
    workspace.run("users", "create", "held@example.com")
    workspace.sql("UPDATE \"user\" SET held_nanos = 2500 WHERE email = 'held@example.com'")
    result = run_cli(workspace.config, "doctor")
    assert result.returncode == 1
    assert "MISMATCH account held@example.com" in result.stdout
    assert "held $0.000002500 != open holds $0.000000000" in result.stdout
    workspace.sql("UPDATE \"user\" SET held_nanos = 0 WHERE email = 'held@example.com'")
    workspace.run("doctor")


def test_doctor_names_usage_totals_that_disagree_with_the_ledger(workspace: Workspace) -> None:
    """The customer's totals, the portal's days and the dashboard's rollups are kept apart
    from the ledger and the usage rows: a drift in any of them is a mismatch (a total counted
    twice, a day never counted), each named by its account."""
    workspace.run("users", "create", "drift@example.com")
    user_id, uuid = workspace.sql(
        "SELECT id, uuid FROM \"user\" WHERE email = 'drift@example.com'"
    )[0]
    figures = (
        "requests, errors, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,"
        " cost_nanos"
    )
    workspace.sql(
        f"INSERT INTO account_usage (user_id, {figures}, last_request_at) "
        "VALUES (?, 1, 0, 10, 5, 0, 0, 1500, '2026-02-29 23:59:59.900000')",
        (user_id,),
    )
    result = run_cli(workspace.config, "doctor")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert (
        f"MISMATCH account drift@example.com (id {uuid}): usage total $0.000001500 != ledger"
        " usage debits $0.000000000" in lines
    ), lines
    assert any(
        line.startswith(f"MISMATCH account drift@example.com (id {uuid}): requests 1 != 0")
        for line in lines
    ), lines
    assert any(line.startswith("MISMATCH usage rollups per day: requests") for line in lines)
    assert not any("per minute" in line for line in lines)  # minutes agree with their days
    workspace.sql("DELETE FROM account_usage WHERE user_id = ?", (user_id,))
    workspace.run("doctor")
    today = datetime.now(UTC).strftime("%Y-%m-%d")  # a minute of today without its day
    workspace.sql(
        f"INSERT INTO usage_rollup (period, bucket, model, {figures}) "
        "VALUES ('minute', ?, 'm', 1, 0, 10, 5, 0, 0, 1500)",
        (today + " 12:00",),
    )
    result = run_cli(workspace.config, "doctor")
    assert result.returncode == 1
    assert f"MISMATCH usage rollups per minute of {today} (m): requests 0 != 1 in the minute" in (
        result.stdout
    ), result.stdout


def test_doctor_reports_a_schema_behind_or_ahead(fresh_workspace: Workspace) -> None:
    fresh_workspace.run("migrate")
    fresh_workspace.sql("INSERT INTO schema_migration VALUES (?, 'future', '2030-01-01')", (999,))
    assert (
        "schema version 999 is newer than this codelace-box knows"
        in run_cli(fresh_workspace.config, "doctor").stdout
    )
    fresh_workspace.sql("DELETE FROM schema_migration")
    behind = run_cli(fresh_workspace.config, "doctor")
    assert behind.returncode == 1
    assert f"schema version 0, expected {LATEST_VERSION} (run migrate)" in behind.stdout


def test_migrate_status_on_a_newer_schema_says_so_and_fails(fresh_workspace: Workspace) -> None:
    """A database a newer codelace-box migrated: `migrate --status` said 'newer than this
    codelace-box' but exited 0, so a script checking it before an upgrade (or a rollback)
    could not tell. It still prints the status, then fails with one line, exit 1."""
    fresh_workspace.run("migrate")
    fresh_workspace.sql("INSERT INTO schema_migration VALUES (?, 'future', '2030-01-01')", (999,))
    result = run_cli(fresh_workspace.config, "migrate", "--status")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout.splitlines()[:2] == [
        f"schema version 999 (this codelace-box knows up to {LATEST_VERSION})",
        "newer than this codelace-box: 999 (upgrade it first)",
    ], result.stdout
    assert one_error_line(result.stderr) == (
        f"error: the database's schema (version 999) is newer than this codelace-box "
        f"(up to {LATEST_VERSION}): upgrade codelace-box before using it on this database"
    )
    fresh_workspace.sql("DELETE FROM schema_migration WHERE version = 999")
    assert fresh_workspace.run("migrate", "--status").stdout.splitlines()[-1] == "pending: none"


def test_doctor_reports_a_migration_missing_below_the_newest(fresh_workspace: Workspace) -> None:
    """A schema record that lacks a version below the newest (a hand repair, a partial copy
    of the table): `migrate --status` listed it as pending and every command then failed
    applying it again ('duplicate column name'), but doctor said 'ok: schema version N'."""
    fresh_workspace.run("migrate")
    fresh_workspace.sql("DELETE FROM schema_migration WHERE version = 5")
    found = run_cli(fresh_workspace.config, "doctor")
    assert found.returncode == 1, found.stdout
    assert "5" in found.stdout and "not recorded" in found.stdout, found.stdout


def test_backup_refuses_to_overwrite_and_needs_a_database(
    workspace: Workspace, tmp_path: Path
) -> None:
    existing = tmp_path / "exists.db"
    existing.write_bytes(b"keep me")
    assert "already exists; choose a new file" in workspace.fail("backup", str(existing))
    assert existing.read_bytes() == b"keep me"
    missing = make_workspace(tmp_path / "empty")
    assert "no database at" in missing.fail("backup", str(tmp_path / "copy.db"))


def test_backup_to_a_place_it_cannot_write_is_one_line_naming_it(
    workspace: Workspace, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for target in (blocker / "copy.db", blocker / "sub" / "copy.db"):
        line = workspace.fail("backup", str(target))
        assert line.startswith(f"error: cannot write the backup to {target}: "), line
        assert "unexpected" not in line
    assert blocker.read_text() == "not a folder"
    assert not list(tmp_path.glob("**/*.partial"))
    assert workspace.fail("backup", "") == "error: backup needs a file PATH, got an empty one"
    folder = f"{tmp_path / 'not-yet'}/"  # a folder meant, not there yet: no file of its name
    assert workspace.fail("backup", folder) == (
        f"error: backup needs a file PATH, got a folder: {folder}"
    )
    assert not (tmp_path / "not-yet").exists()
    if Path("/proc/self").is_dir():  # a folder nobody can create files in, even root
        line = workspace.fail("backup", "/proc/codelace-copy.db")
        assert line.startswith("error: cannot write the backup to /proc/codelace-copy.db: "), line


WRITER = textwrap.dedent(
    """
    import sys, pathlib, random
    from codelace_box.db.core import open_database, write_transaction
    from codelace_box.billing.ledger import append_entry
    from codelace_box.db.models import Hold, User
    open_database(sys.argv[1])
    stop, users, n = pathlib.Path(sys.argv[2]), [1, 2, 3], 0
    while not stop.exists():
        n += 1
        user = random.choice(users)
        with write_transaction():  # an adjustment, and a hold opened and closed ("admin": a
            # "usage" debit comes with its usage row and totals, which doctor checks)
            append_entry(user, random.randint(-5000, 9000), "admin", "load", f"w:{n}")
            Hold.create(user=user, amount_nanos=700, request_id=f"h:{n}")
            User.update(held_nanos=User.held_nanos + 700).where(User.id == user).execute()
        if n % 2:
            with write_transaction():
                Hold.delete().where(Hold.request_id == f"h:{n}").execute()
                User.update(held_nanos=User.held_nanos - 700).where(User.id == user).execute()
    print(n)
    """
)


def ledger_count(space: Workspace) -> int:
    return int(space.sql("SELECT COUNT(*) FROM ledger_entry")[0][0])


def seed_for_backup(space: Workspace) -> None:
    """Three accounts and ~60k ledger rows, so a copy takes a moment."""
    space.run("migrate")
    for number in range(1, 4):
        space.run("users", "create", f"writer{number}@example.com")
    space.sql(
        "BEGIN IMMEDIATE; "
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000) "
        "INSERT INTO ledger_entry (user_id, amount_nanos, kind, reason, idempotency_key, "
        "created_at) SELECT 1 + i % 3, 1000, 'admin', 'seed ' || hex(randomblob(16)), "
        "'seed:' || i, '2026-01-01 00:00:00' FROM n; "
        'UPDATE "user" SET balance_nanos = 20000000; COMMIT;'
    )


@pytest.mark.timeout(120)
def test_backups_taken_during_writes_restore_consistent(fresh_workspace: Workspace) -> None:
    space = fresh_workspace
    seed_for_backup(space)
    space.run("doctor")
    stop = space.root / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(space.db_path), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=REPO_ROOT,
    )
    try:
        copies = []
        while ledger_count(space) < 60_050:
            time.sleep(0.05)
        for number in range(3):
            restore = make_workspace(space.root / f"restore{number}")
            before = ledger_count(space)
            space.run("backup", str(restore.db_path))
            copies.append((restore, before, ledger_count(space)))
    finally:
        stop.touch()
        out, err = writer.communicate(timeout=30)
    assert writer.returncode == 0, err
    assert any(after > before for _, before, after in copies), "no write overlapped a backup"
    for restore, before, after in copies:
        assert not Path(f"{restore.db_path}-wal").exists()  # one self-contained file
        assert before <= ledger_count(restore) <= after
        assert restore.sql("PRAGMA integrity_check") == [("ok",)]
        assert restore.run("doctor").stdout.startswith("ok: ")
        assert len(restore.json("users", "list")) == 3
    space.run("doctor")
    assert int(out) > 100


def test_doctor_names_provider_keys_the_server_secret_cannot_read(
    fresh_workspace: Workspace,
) -> None:
    space = fresh_workspace
    space.run("providers", "add", "vault", "--kind", "openai", "--key", "sk-vault-0123456789")
    space.run("doctor")
    other = {"CODELACE_SERVER_SECRET_KEY": "not-the-secret-the-keys-were-stored-with"}
    result = run_cli(space.config, "doctor", env=other)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "MISMATCH provider vault key 1 (sk-…6789) cannot be decrypted with the current "
        "server.secret_key"
    ]
    assert "sk-vault-0123456789" not in result.stdout + result.stderr
    (space.root / "data" / "secret_key").unlink()
    assert run_cli(space.config, "doctor").stdout.splitlines() == [  # a new machine's restore
        "MISMATCH provider vault key 1 (sk-…6789) cannot be decrypted without a server secret "
        "(none set: server.secret_key, or the data directory's secret_key file from the box "
        "that stored it)"
    ]
    assert not (space.root / "data" / "secret_key").exists()  # doctor never makes one


@pytest.mark.parametrize("command", [("migrate",), ("doctor",), ("users", "list")])
def test_a_file_that_is_not_a_database_is_one_clear_line(
    fresh_workspace: Workspace, command: tuple[str, ...]
) -> None:
    fresh_workspace.db_path.parent.mkdir(parents=True)
    fresh_workspace.db_path.write_bytes(b"this is not an SQLite database, just text. " * 50)
    message = fresh_workspace.fail(*command)
    assert message == (
        f"error: database.path {fresh_workspace.db_path}: cannot open the database: "
        "file is not a database"
    )


@pytest.mark.parametrize("depth", [1, 2])
def test_a_database_path_under_a_file_says_a_file_is_in_the_way(tmp_path: Path, depth: int) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    db_path = blocker / "sub" / "codelace.db" if depth == 2 else blocker / "codelace.db"
    space = make_workspace(tmp_path / "conf", database={"path": str(db_path)})
    message = space.fail("users", "list")
    assert message == (
        f"error: database.path {db_path}: cannot open the database: "
        "a file is in the way of its folder"
    )


def test_a_database_path_that_is_a_folder_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    space = make_workspace(tmp_path / "conf", database={"path": str(folder)})
    assert space.fail("users", "list") == (
        f"error: database.path {folder}: is a folder; name the database file in it"
    )


def test_a_backup_into_a_link_to_a_missing_folder_says_so(
    workspace: Workspace, tmp_path: Path
) -> None:
    """backup.dir (or a backup's folder) is a link to a disk's folder, and that disk is not
    mounted: the backup said 'a file is in the way of its folder', sending the operator after
    a file that is not there."""
    link = tmp_path / "offsite"
    link.symlink_to(tmp_path / "mnt" / "backups")
    line = workspace.fail("backup", str(link / "copy.db"))
    assert line == (
        f"error: cannot write the backup to {link / 'copy.db'}: its folder {link} is a link to "
        f"{tmp_path / 'mnt' / 'backups'}, which does not exist (a disk not mounted?)"
    ), line


@pytest.mark.parametrize("in_the_way", ["folder", "file above"])
def test_migrate_status_says_what_is_in_the_way_of_the_database(
    tmp_path: Path, in_the_way: str
) -> None:
    """A folder at database.path (or a file where its folder should be) made every command,
    serve and migrate fail with one line naming it, but `migrate --status` answered 'no
    database at ... yet (the first serve, migrate or management command makes it)', exit 0:
    none of them would. It now fails with the line the others give, and writes nothing."""
    if in_the_way == "folder":
        db_path = tmp_path / "data"
        db_path.mkdir()
        expected = f"error: database.path {db_path}: is a folder; name the database file in it"
    else:
        (tmp_path / "data").write_text("a file where the data folder should be")
        db_path = tmp_path / "data" / "codelace.db"
        expected = (
            f"error: database.path {db_path}: cannot open the database: "
            "a file is in the way of its folder"
        )
    space = make_workspace(tmp_path / "conf", database={"path": str(db_path)})
    assert space.fail("migrate", "--status") == expected
    assert space.fail("migrate") == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conf", "data"]


def test_a_restore_into_a_folder_at_database_path_says_so(tmp_path: Path) -> None:
    """restore with a folder where database.path points copied and checked the whole backup,
    then failed on 'unexpected IsADirectoryError: [Errno 21] Is a directory:
    'data/codelace.db.restoring' -> 'data/codelace.db'' (as if a bug). It now says what every
    command says of that folder, before any work, and leaves the folder as it was."""
    backup = _a_backup(tmp_path)
    folder = tmp_path / "data" / "codelace.db"
    folder.mkdir(parents=True)
    space = make_workspace(tmp_path / "conf", database={"path": str(folder)})
    assert space.fail("restore", str(backup)) == (
        f"error: database.path {folder}: is a folder; name the database file in it"
    )
    assert folder.is_dir() and not any(folder.iterdir())
    assert sorted(p.name for p in folder.parent.iterdir()) == ["codelace.db"]


def test_a_restore_under_a_file_where_the_folder_should_be_says_so(tmp_path: Path) -> None:
    """With a file where database.path's folder should be, every command says 'a file is in
    the way of its folder'; restore said 'cannot open codelace.db.lock beside it: File
    exists (the user running codelace-box must be able to write that folder)', sending the
    operator after permissions. It now says what the others say."""
    backup = _a_backup(tmp_path)
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    db_path = blocker / "codelace.db"
    space = make_workspace(tmp_path / "conf", database={"path": str(db_path)})
    assert space.fail("restore", str(backup)) == (
        f"error: database.path {db_path}: cannot open the database: "
        "a file is in the way of its folder"
    )
    assert blocker.read_text() == "a file where the data folder should be"


def _a_backup(tmp_path: Path) -> Path:
    source = make_workspace(tmp_path / "source")
    source.run("users", "create", "restored@example.com")
    backup = tmp_path / "good.db"
    source.run("backup", str(backup))
    return backup
