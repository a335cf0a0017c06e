"""`db copy` from outside: a source that another process writes is copied as it was at one
instant (its tables were read one by one, so credits committed between the users and the
ledger made a copy whose balances did not match their ledgers, and the copy still said it was
done), and `--to` takes only a database URL it can keep; a SQLite source holding a NUL, which
an earlier release stored, is copied to PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import apsw
import pytest

from bench.pgcluster import PgCluster
from codelace_box.accounts.users import create_user
from codelace_box.billing.ledger import post_entry
from codelace_box.catalog.providers import add_provider
from codelace_box.db.core import close_database, open_database, query_all
from codelace_box.db.migrate import migrate
from codelace_box.gateway.metering import admit
from tests.foundation.many_keys import add_api_keys
from tests.support import PROGRAM, cli_env, run_cli, sqlite_rows, write_config

KEYS = 20_000  # rows read between the users and the ledger: the copy takes a while


def _source(path: Path) -> None:
    migrate(open_database(path))
    user = create_user("live@copy.test")
    post_entry(user.id, 5_000_000_000, "admin", "seed", "seed-live")
    close_database()
    add_api_keys(path, KEYS)


def _credit_until(path: Path, stop: threading.Event, done: list[int]) -> None:
    """Credits of 1 nano, each its balance and ledger row in one transaction, as serve's."""
    connection = apsw.Connection(str(path))
    connection.set_busy_timeout(10_000)
    connection.execute("PRAGMA synchronous = OFF")
    while not stop.is_set():
        with connection:
            connection.execute('UPDATE "user" SET balance_nanos = balance_nanos + 1')
            connection.execute(
                "INSERT INTO ledger_entry (user_id, amount_nanos, kind, reason, "
                "idempotency_key, created_at) VALUES (1, 1, 'admin', 'live', ?, "
                "'2026-01-01 00:00:00')",
                (f"live-{len(done)}",),
            )
        done.append(1)
    connection.close()


def test_db_copy_while_another_process_writes_is_one_instant_of_the_source(
    tmp_path: Path,
) -> None:
    source, copy = tmp_path / "source.db", tmp_path / "copy.db"
    _source(source)
    config = write_config(tmp_path / "c.toml", {"database": {"path": str(source)}})
    stop, done = threading.Event(), []
    writer = threading.Thread(target=_credit_until, args=(source, stop, done))
    writer.start()
    try:
        while len(done) < 5:  # the writer runs before the copy starts
            stop.wait(0.01)
        copying = subprocess.run(
            [*PROGRAM, "--config", str(config), "db", "copy", "--to", f"sqlite:///{copy}"],
            capture_output=True, text=True, env=cli_env(), timeout=120, check=False,
        )  # fmt: skip
        during = len(done)
    finally:
        stop.set()
        writer.join()
    assert copying.returncode == 0, copying.stderr
    assert during > 50, "the writer must have committed while the copy ran"
    [(balance, ledger, keys)] = sqlite_rows(
        copy,
        "SELECT balance_nanos, (SELECT SUM(amount_nanos) FROM ledger_entry), "
        '(SELECT COUNT(*) FROM api_key) FROM "user"',
    )
    assert keys == KEYS
    assert balance == ledger, f"balance {balance} != ledger {ledger}"


def test_db_copy_takes_only_a_database_url_it_can_keep(tmp_path: Path) -> None:
    """Anything but sqlite:///FILE or postgresql://... was opened as a SQLite file named by
    the text (a mysql:// URL made folders `mysql:/host`) and :memory: was gone at exit; both
    said 'copied N rows'. The refusal never shows a password (a keyword DSN's was shown)."""
    source = tmp_path / "source.db"
    migrate(open_database(source))
    close_database()
    config = write_config(tmp_path / "c.toml", {"database": {"path": str(source)}})
    for url in (
        "mysql://box:hunter2@db.internal/codelace",
        "postgresql+psycopg://box:hunter2@db.internal/codelace",
        "host=db.internal user=box password=hunter2 dbname=codelace",  # libpq's keyword form
        "host=db.internal PassWord = 'hunter2 x' dbname=codelace",
        "sqlite:///:memory:",
        str(tmp_path / "plain.db"),
        "",
    ):
        refused = run_cli(config, "db", "copy", "--to", url)
        assert refused.returncode == 2, (url, refused.stdout)
        [line] = refused.stderr.splitlines()
        assert "expected sqlite:///PATH (a file) or postgresql://" in line, line
        assert "hunter2" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml", "source.db"]
    copied = run_cli(config, "db", "copy", "--to", f"sqlite:///{tmp_path / 'copy.db'}")
    assert copied.returncode == 0, copied.stderr


@pytest.mark.parametrize("folder", ["elsewhere", "My Documents"])
def test_a_relative_sqlite_target_is_named_as_database_url_will_find_it(
    tmp_path: Path, folder: str
) -> None:
    """`--to sqlite:///copy.db` is written beside the working folder, but a database.url of the
    same text is read beside the config file: run from elsewhere, pasting the URL the command
    printed made serve open a new, empty database. The command prints the copy's absolute URL,
    and that URL in database.url opens the copy, also from a folder whose path has a space
    ("My Documents": database.url refused such a URL, as database.path never did)."""
    source = tmp_path / "box" / "source.db"
    source.parent.mkdir()
    migrate(open_database(source))
    create_user("kept@copy.test")
    close_database()
    config = write_config(tmp_path / "box" / "c.toml", {"database": {"path": str(source)}})
    elsewhere = tmp_path / folder
    elsewhere.mkdir()
    copied = run_cli(config, "db", "copy", "--to", "sqlite:///copy.db", cwd=elsewhere)
    assert copied.returncode == 0, copied.stderr
    assert (elsewhere / "copy.db").is_file()
    line = next(x for x in copied.stdout.splitlines() if " to sqlite:" in x)
    url = line.split(" to ", 1)[1]
    assert url == f"sqlite:///{elsewhere / 'copy.db'}"
    moved = write_config(tmp_path / "box" / "moved.toml", {"database": {"url": url}})
    shown = run_cli(moved, "users", "show", "kept@copy.test")
    assert shown.returncode == 0, shown.stderr


def test_a_target_named_as_the_source_s_own_wal_file_is_refused(tmp_path: Path) -> None:
    """`--to sqlite:///data/codelace.db-wal`: the copy was written into the file the source's
    open connection used as its write-ahead log, said 'copied N rows', and was deleted when the
    source closed (its rows left in a stray `codelace.db-wal-wal`)."""
    source = tmp_path / "source.db"
    migrate(open_database(source))
    close_database()
    config = write_config(tmp_path / "c.toml", {"database": {"path": str(source)}})
    for suffix in ("-wal", "-shm", "-journal"):
        refused = run_cli(config, "db", "copy", "--to", f"sqlite:///{source}{suffix}")
        assert refused.returncode == 1, (suffix, refused.stdout)
        [line] = refused.stderr.splitlines()
        assert "database's own" in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml", "source.db"]


def test_a_sqlite_target_in_a_folder_not_made_yet_gets_its_folder_as_database_path_does(
    tmp_path: Path,
) -> None:
    """`--to sqlite:///PATH` whose folders do not exist yet: they are made, the last one
    private (700) as serve and migrate make database.path's, and the copy is whole there."""
    source = tmp_path / "source.db"
    migrate(open_database(source))
    create_user("moved@copy.test")
    close_database()
    config = write_config(tmp_path / "c.toml", {"database": {"path": str(source)}})
    target = tmp_path / "new" / "data" / "copy.db"
    copied = run_cli(config, "db", "copy", "--to", f"sqlite:///{target}")
    assert copied.returncode == 0, copied.stderr
    assert target.parent.stat().st_mode & 0o777 == 0o700
    assert sqlite_rows(target, 'SELECT email FROM "user"') == [("moved@copy.test",)]


def test_a_target_that_cannot_be_opened_is_named_as_to_not_as_a_setting(tmp_path: Path) -> None:
    """A folder, a path under a file or an unreachable PostgreSQL given as `--to` was refused as
    'database.path ...' or 'database.url ...': the operator looked in the config, which was
    fine. The line names `--to` and the URL given."""
    source = tmp_path / "source.db"
    migrate(open_database(source))
    close_database()
    config = write_config(tmp_path / "c.toml", {"database": {"path": str(source)}})
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("a file where a folder should be")
    for url in (
        f"sqlite:///{tmp_path / 'folder'}",
        f"sqlite:///{tmp_path / 'file' / 'copy.db'}",
        "postgresql://box:hunter2@127.0.0.1:1/codelace",
    ):
        refused = run_cli(config, "db", "copy", "--to", url)
        assert refused.returncode != 0, (url, refused.stdout)
        [line] = refused.stderr.splitlines()
        assert line.startswith("error: --to "), line
        assert "database.path" not in line and "database.url" not in line, line
        assert "hunter2" not in line, line


def test_a_nul_an_earlier_release_stored_on_sqlite_is_copied_to_postgresql(
    tmp_path: Path, pg_url: str
) -> None:
    """Before 2026-12-05 a provider key refused with words holding a NUL kept them as its
    failure_reason as they came (SQLite takes a NUL in text; PostgreSQL takes none): `db copy`
    of such a database to PostgreSQL failed whole with 'unexpected DataError'. The NUL is
    written as the box writes it there now (`\\x00`), and the copy is whole."""
    source = tmp_path / "source.db"
    migrate(open_database(source))
    add_provider("acme", "openai", "a-secret-key-for-the-copy-0000000000", "sk-copy-nul-000000")
    close_database()
    connection = apsw.Connection(str(source))  # as the earlier release wrote it
    connection.execute("UPDATE provider_key SET failure_reason = ?", ("bad\x00key",))
    connection.close()
    config = write_config(tmp_path / "c.toml", {"database": {"path": str(source)}})
    copied = run_cli(config, "db", "copy", "--to", pg_url)
    assert copied.returncode == 0, copied.stderr
    open_database(pg_url)
    try:
        assert query_all("SELECT failure_reason FROM provider_key") == [("bad\\x00key",)]
    finally:
        close_database()


def test_holds_a_stopped_box_left_are_told_apart_from_calls_in_flight(tmp_path: Path) -> None:
    """Holds a box left when it was killed (no serve runs on the source): the warning said
    '(serve still running)' and to stop serve and copy again, which an operator with nothing
    running could not do. It now says what each case means and what to do."""
    source = tmp_path / "source.db"
    migrate(open_database(source))
    user = create_user("held@copy.test")
    post_entry(user.id, 5_000_000_000, "admin", "seed", "seed-held")
    admit(user.id, "req-left-by-a-killed-box", 1_000)
    admit(user.id, "req-another", 1_000)
    close_database()
    config = write_config(tmp_path / "c.toml", {"database": {"path": str(source)}})
    copied = run_cli(config, "db", "copy", "--to", f"sqlite:///{tmp_path / 'copy.db'}")
    assert copied.returncode == 0, copied.stderr
    assert copied.stderr.strip() == (
        "warning: 2 calls were in flight at the source: their holds are not copied. If a serve "
        "still runs on it, those calls settle there, not in this copy: stop every serve and "
        "copy again for a copy that misses nothing. If none runs, they are holds a box left "
        "when it stopped without settling (a crash, a kill): those calls are not charged, the "
        "copy misses nothing, and the source's next serve releases them"
    ), copied.stderr


SELF_COPY = "error: --to names the database being copied"


def _refused_as_the_source(config: Path, url: str) -> None:
    refused = run_cli(config, "db", "copy", "--to", url)
    assert refused.returncode == 1, (url, refused.stdout)
    [line] = refused.stderr.splitlines()
    assert line.startswith(SELF_COPY), (url, line)


@pytest.mark.parametrize("filled", [False, True])
def test_a_sqlite_copy_into_its_own_source_by_another_name_is_refused(
    tmp_path: Path, filled: bool
) -> None:
    """`db copy --to` the source's own file by another path, a symbolic or a hard link was
    'copied 0 rows' on an empty source (a copy into itself) and went on into it otherwise."""
    source = tmp_path / "data" / "source.db"
    migrate(open_database(source))
    if filled:
        create_user("self@copy.test")
    close_database()
    config = write_config(tmp_path / "c.toml", {"database": {"path": str(source)}})
    (tmp_path / "link.db").symlink_to(source)
    (tmp_path / "hard.db").hardlink_to(source)
    for name in (source, tmp_path / "data" / ".." / "data" / "source.db", tmp_path / "link.db",
                 tmp_path / "hard.db"):  # fmt: skip
        _refused_as_the_source(config, f"sqlite:///{name}")
    rows = sqlite_rows(source, 'SELECT email FROM "user"')
    assert rows == ([("self@copy.test",)] if filled else [])


@pytest.mark.parametrize("filled", [False, True])
def test_a_postgresql_copy_into_its_own_source_is_refused(
    tmp_path: Path, pg_url: str, filled: bool
) -> None:
    """The same PostgreSQL database named by another URL (another parameter) was a copy
    into itself: 'copied 0 rows' when empty."""
    migrate(open_database(pg_url))
    if filled:
        create_user("self@copy.test")
    close_database()
    sections = {"database": {"url": pg_url}, "server": {"secret_key": "s" * 32}}
    config = write_config(tmp_path / "c.toml", sections)
    _refused_as_the_source(config, f"{pg_url}{'&' if '?' in pg_url else '?'}application_name=x")
    open_database(pg_url)
    try:
        assert query_all('SELECT email FROM "user"') == ([("self@copy.test",)] if filled else [])
    finally:
        close_database()


def test_a_role_that_may_not_read_pg_stat_activity_still_copies_and_is_still_refused_itself(
    tmp_path: Path, pg_cluster: PgCluster
) -> None:
    """A hardened server where PUBLIC may not read pg_stat_activity: a copy between two
    databases of one server, which the role owns, was refused ('the database role may not do
    this: permission denied for view pg_stat_activity; make it the database's owner ...': it
    was); a copy into the source itself must still be refused."""
    role = f"nostats_{os.getpid()}"
    pg_cluster.sql(f'CREATE ROLE "{role}" LOGIN')
    urls = []
    for _ in range(2):
        name = pg_cluster.new_database().rsplit("/", 1)[1]
        pg_cluster.sql(f'ALTER DATABASE "{name}" OWNER TO "{role}"')
        pg_cluster.sql("REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC", name)
        urls.append(f"postgresql://{role}@127.0.0.1:{pg_cluster.port}/{name}")
    source, target = urls
    migrate(open_database(source))
    create_user("hardened@copy.test")
    close_database()
    sections = {"database": {"url": source}, "server": {"secret_key": "s" * 32}}
    config = write_config(tmp_path / "c.toml", sections)
    copied = run_cli(config, "db", "copy", "--to", target)
    assert copied.returncode == 0, copied.stderr
    _refused_as_the_source(config, f"{source}?application_name=x")
    open_database(target)
    try:
        assert query_all('SELECT email FROM "user"') == [("hardened@copy.test",)]
    finally:
        close_database()
