"""Disk and file trouble under the box. The database's disk fills up under a serving box (a
small tmpfs of its own, so this needs the root the CI runs as; skipped where it cannot be
mounted): clients get the 503 of an unavailable database, the operator one line per failure,
and once there is room again the box serves and charges as before, its books whole. A data
folder the serving user cannot write is one line naming it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.foundation.conftest import Workspace, make_workspace
from tests.support import AS_NOBODY, TLS, ServerProcess, as_nobody, cli_env, free_port

pytestmark = pytest.mark.timeout(120)
FAST_TICK = {"CODELACE_UPKEEP_TICK_SEC": "0.2"}


def _tmpfs(tmp_path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` at tmp_path/disk, unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=700", "tmpfs", str(disk)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs at tmp_path/disk."""
    yield from _tmpfs(tmp_path, "4M")


@pytest.fixture
def disk_32m(tmp_path: Path) -> Iterator[Path]:
    """A 32 MiB tmpfs at tmp_path/disk."""
    yield from _tmpfs(tmp_path, "32M")


def fill(disk: Path, name: str = "ballast") -> Path:
    """A file taking every free byte of the disk."""
    ballast = disk / name
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 512, 1):
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)
    return ballast


def fill_behind_an_empty_wal(space: Workspace, disk: Path) -> Path:
    """Fill the disk once the database's WAL is checkpointed and truncated to nothing, so the
    box's next write must grow it. A checkpoint that met a reader of the box copies every frame
    but cannot truncate: the next write would then reuse the WAL's room and succeed."""
    wal = space.db_path.with_name(space.db_path.name + "-wal")
    deadline = time.monotonic() + 20
    while True:
        [(busy, _, _)] = space.sql("PRAGMA wal_checkpoint(TRUNCATE)")
        if not busy and wal.stat().st_size == 0:
            ballast = fill(disk)
            if wal.stat().st_size == 0:  # no write of the box came in between
                return ballast
            ballast.unlink()
        assert time.monotonic() < deadline, "the WAL was never found empty"
        time.sleep(0.05)


def alerting_box(disk: Path, logs: Path) -> tuple[WebhookReceiver, Workspace, ServerProcess]:
    """A box on `disk` (not started, ticking every 0.2 s) alerting a webhook receiver."""
    hook = WebhookReceiver().start()
    port = free_port()
    space = make_workspace(disk / "box", server={"port": port},
                           alerts={"webhook_url": hook.url})  # fmt: skip
    server = ServerProcess(space.config, port, env={"CODELACE_UPKEEP_TICK_SEC": "0.2"})
    server.log_path = logs / "serve.log"
    return hook, space, server


def wait_for_a_webhook(hook: WebhookReceiver, server: ServerProcess, seconds: float) -> None:
    """Until the receiver heard an alert (the server's log in the failure)."""
    deadline = time.monotonic() + seconds
    while not hook.texts():
        assert time.monotonic() < deadline, server.log_text()[-3000:]
        time.sleep(0.1)


def disk_full_alert(folder: Path) -> str:
    """The alert of the database's disk full, its data folder `folder`."""
    return (
        f"codelace-box: the database's disk is full ({folder}): requests fail with 503 until "
        "there is room"
    )


def metered_box(root: Path, upstream: str) -> tuple[Workspace, int, str]:
    port = free_port()
    space = make_workspace(root, server={"port": port})
    space.run("providers", "add", "fake", "--kind", "openai", "--base-url", upstream,
              "--key", "sk-fake-upstream-key-0001")  # fmt: skip
    space.run("models", "set", "fake/m", "--input-per-1m", "1", "--output-per-1m", "2")
    space.run("users", "create", "full@example.com")
    space.run("credit", "full@example.com", "1", "--reason", "test")
    return space, port, space.run("keys", "create", "full@example.com").stdout.strip()


def error_codes(answer: httpx.Response) -> list[str]:
    """The error codes of a JSON error or of a stream's error events."""
    if answer.headers.get("content-type", "").startswith("application/json"):
        body = answer.json()
        return [body["error"]["code"]] if "error" in body else []
    events = [line[6:] for line in answer.text.splitlines() if line.startswith("data: {")]
    return [e["error"]["code"] for e in map(json.loads, events) if "error" in e]


def stream_reading(url: str, body: dict[str, object], headers: dict[str, str], then: Any) -> str:
    """A streamed call: `then()` once its first line came, then the rest; the whole text."""
    with httpx.stream("POST", url, json={**body, "stream": True}, headers=headers,
                      timeout=30, verify=TLS) as answer:  # fmt: skip
        assert answer.status_code == 200, answer.read()
        lines = answer.iter_lines()
        first = next(lines)
        then()
        return "\n".join([first, *lines])


def test_a_full_disk_is_a_503_and_one_line_then_the_box_goes_on(
    tmp_path: Path, small_disk: Path
) -> None:
    """Calls that meet the full disk at admission, at a stream's settlement and at an answer's
    settlement: a 503 (an error event in the stream) saying the database is unavailable,
    never a 500 of a bug with its traceback; free room, and the next call is charged. The
    log's 'a batch of 1 writes failed: database or disk is full' named no file: it now says
    database.path and that its disk is full."""
    fake = FakeOpenAI().start()
    fake.default = Reply(prompt_tokens=7, completion_tokens=8, content="word " * 50)
    space, port, key = metered_box(small_disk / "box", fake.base_url)
    server = ServerProcess(space.config, port)
    server.log_path = tmp_path / "serve.log"  # the log is not on the full disk
    headers = {"authorization": f"Bearer {key}"}
    body = {"model": "fake/m", "messages": [{"role": "user", "content": "hi " * 2000}]}
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    ballast: list[Path] = []
    try:
        server.start()
        fake.push(Reply(pieces=["a ", "b ", "c"], piece_delay=0.3, prompt_tokens=7))
        text = stream_reading(url, body, headers, lambda: ballast.append(fill(small_disk)))
        assert error_codes(httpx.Response(200, text=text)) == ["database_unavailable"], text
        refused = httpx.post(url, json=body, headers=headers, timeout=30, verify=TLS)
        assert (refused.status_code, error_codes(refused)) == (503, ["database_unavailable"])
        ballast.pop().unlink()
        fake.push(Reply(delay_before=1.0, prompt_tokens=7, completion_tokens=8))
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(httpx.post, url, json=body, headers=headers, timeout=30)
            while not fake.requests[-1:] or fake.requests[-1].body.get("stream"):
                time.sleep(0.01)
            ballast.append(fill(small_disk))
            unsettled = answer.result()
        assert (unsettled.status_code, error_codes(unsettled)) == (503, ["database_unavailable"])
        ballast.pop().unlink()
        answer = httpx.post(url, json=body, headers=headers, timeout=30, verify=TLS)
        assert answer.status_code == 200 and answer.headers["x-codelace-cost-usd"] == "0.000023"
        assert server.stop() == 0
        server.start()  # frees what the failed settlements could not
    finally:
        server.stop()
        fake.stop()
    log = server.log_text()
    assert "Traceback" not in log, log[-3000:]
    # each failed write's line names the file and its disk (the operator finds which disk)
    said = f"writes failed: database or disk is full (database.path {space.db_path}: its disk"
    assert said in log, log[-3000:]
    assert space.run("doctor").stdout.startswith("ok: ")
    [(balance, held)] = space.sql('SELECT balance_nanos, held_nanos FROM "user"')
    assert (balance, held) == (1_000_000_000 - 23_000, 0)
    assert space.sql("SELECT status, cost_nanos FROM usage_record") == [("ok", 23_000)]
    assert space.sql("SELECT COUNT(*) FROM hold") == [(0,)]


def _made_by_root(root: Path) -> Workspace:
    """A box under `root` whose first command (`users create`) root ran: data/ is root's."""
    os.chmod(root, 0o755)
    space = make_workspace(root / "box")
    space.run("users", "create", "first@example.com")
    os.chmod(space.config, 0o644)
    return space


def _serve_as_nobody(space: Workspace, root: Path) -> subprocess.CompletedProcess[str]:
    """`serve` started by the service's user (nobody), to its end."""
    return as_nobody(space.config, "serve", home=root)


def test_a_data_folder_the_service_user_cannot_write_is_one_line_naming_it() -> None:
    """root ran the first command (`users create`) and made data/; the service's own user
    then started `serve`: it said `unexpected PermissionError: ... codelace.db.lock`, as if a
    bug. Now the line names database.path, what it could not open, and why."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run serve as another user")
    root = Path(tempfile.mkdtemp(prefix="codelace-perm-", dir="/tmp"))
    try:
        space = _made_by_root(root)  # data/ is root's, 700
        os.chown(root / "box", 65534, 65534)  # the service user's folder, not its data/
        started = _serve_as_nobody(space, root)
    finally:
        shutil.rmtree(root)
    assert started.returncode == 1, started.stderr
    [line] = started.stderr.splitlines()
    db = root / "box" / "data" / "codelace.db"
    assert line == (
        f"error: database.path {db}: cannot open codelace.db.lock beside it: Permission denied "
        "(the user running codelace-box must be able to write that folder)"
    )


def test_a_database_file_of_another_user_is_named_with_its_owner() -> None:
    """root ran the first command and made data/ and the database in it; the operator gave the
    folder to the service's user, as the line above says, and `serve` then said only `cannot
    open the database: unable to open database file` (SQLite's words) of a path whose folder
    is fine. Now the line says which file this user may not read and write, and whose it is."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run serve as another user")
    root = Path(tempfile.mkdtemp(prefix="codelace-perm-", dir="/tmp"))
    try:
        space = _made_by_root(root)  # data/ and the file root's
        for folder in (root / "box", root / "box" / "data"):
            os.chown(folder, 65534, 65534)  # the folders given over, not the file
        started = _serve_as_nobody(space, root)
    finally:
        shutil.rmtree(root)
    assert started.returncode == 1, started.stderr
    [line] = started.stderr.splitlines()
    db = root / "box" / "data" / "codelace.db"
    assert line == (
        f"error: database.path {db}: cannot open the database: unable to open database file "
        f"({db} belongs to root and the user running codelace-box may not read and write it: "
        f"chown it, with every file beside it named {db.name}* (its -wal and -shm, the lock "
        "files a root serve leaves), to that user)"
    )


def test_lock_files_a_root_serve_left_are_named_with_their_owner() -> None:
    """root ran `serve` once (to try it), which left its lock files beside the database
    (codelace.db.lock, codelace.db.upkeep.lock, ...), root's and 600; the operator gave the
    database, its -wal and -shm and the folder to the service user, as the line about the
    database says. serve then said `cannot open codelace.db.lock beside it: Permission denied
    (the user running codelace-box must be able to write that folder)` of a folder it may
    write; with that one given over too it served, but its upkeep, key probes and retention
    each logged a PermissionError traceback and never ran (no backup, no alert). The lines
    name the file and its owner, and the database's line names its lock files."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run serve as another user")
    root = Path(tempfile.mkdtemp(prefix="codelace-perm-", dir="/tmp"))
    try:
        space = _made_by_root(root)
        data = root / "box" / "data"
        for name in ("codelace.db.lock", "codelace.db.upkeep.lock"):  # as root's serve left them
            os.close(os.open(data / name, os.O_RDWR | os.O_CREAT, 0o600))
        given = [root / "box", data, *data.glob("codelace.db"), *data.glob("codelace.db-*")]
        for path in [*given, data / "secret_key"]:
            if path.exists():
                os.chown(path, 65534, 65534)
        started = _serve_as_nobody(space, root)
        lead = subprocess.run(
            [*AS_NOBODY, sys.executable, "-c", "import sys; from codelace_box.db.openlock "
             "import try_lead; try_lead(sys.argv[1])", str(data / "codelace.db.upkeep.lock")],
            capture_output=True, text=True, timeout=30, env=cli_env(), check=False,
        )  # fmt: skip
    finally:
        shutil.rmtree(root)
    assert started.returncode == 1, started.stderr
    [line] = started.stderr.splitlines()
    db = data / "codelace.db"
    assert line == (
        f"error: database.path {db}: cannot open codelace.db.lock beside it: Permission denied "
        f"({db}.lock belongs to root: chown it to the user running codelace-box)"
    )
    assert lead.stderr.splitlines()[-1] == (
        f"codelace_box.errors.ConfigError: cannot open {db}.upkeep.lock: Permission denied "
        f"({db}.upkeep.lock belongs to root: chown it to the user running codelace-box)"
    )


def test_a_server_secret_a_root_serve_left_is_named_with_its_owner() -> None:
    """root ran `serve` once, which also wrote the server secret (data/secret_key, root's and
    600); the operator chowned the database's files as its line says (every file named
    codelace.db*) and serve said only `secret_key: cannot read the server secret: Permission
    denied`: the next refusal, not saying whose the file is or what to do. It names its owner
    as the lock files' and the database's lines do."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run serve as another user")
    root = Path(tempfile.mkdtemp(prefix="codelace-perm-", dir="/tmp"))
    try:
        os.chmod(root, 0o755)
        space = make_workspace(root / "box")
        space.run("users", "create", "first@example.com")  # as root
        os.chmod(space.config, 0o644)
        data = root / "box" / "data"
        secret = data / "secret_key"
        secret.write_text("x" * 43 + "\n")  # as root's serve wrote it
        os.chmod(secret, 0o600)
        for path in [root / "box", data, *data.glob("codelace.db*")]:
            os.chown(path, 65534, 65534)
        started = as_nobody(space.config, "serve", home=root)
    finally:
        shutil.rmtree(root)
    assert started.returncode == 78, started.stderr  # EX_CONFIG: the secret, as the config
    [line] = started.stderr.splitlines()
    assert line == (
        f"error: {secret}: cannot read the server secret: Permission denied ({secret} belongs "
        "to root: chown it to the user running codelace-box)"
    )


def test_a_backup_folder_the_service_user_cannot_read_is_a_failed_backup_not_a_crash() -> None:
    """backup.dir in a folder the service's user may not read (root's /var/backups, say):
    doctor printed its ok line, then 'unexpected PermissionError' and exit 1; serve's upkeep
    logged a traceback every tick and never alerted, and as the backup comes first in a tick,
    the error-rate alerts stopped too. Now it is a failed scheduled backup like any other
    (one line, the alert) and a doctor line naming the folder."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run as another user")
    hook = WebhookReceiver().start()
    root = Path(tempfile.mkdtemp(prefix="codelace-perm-", dir="/tmp"))
    try:
        os.chmod(root, 0o755)
        folder = root / "roots" / "backups"
        folder.mkdir(parents=True, mode=0o700)  # root's, 700: the service user cannot read it
        port = free_port()
        space = make_workspace(root / "box", server={"port": port},
                               backup={"every_hours": 1, "dir": str(folder)},
                               alerts={"webhook_url": hook.url})  # fmt: skip
        space.run("users", "create", "first@example.com")
        subprocess.run(["chown", "-R", "65534:65534", str(root / "box")], check=True)
        doctor = as_nobody(space.config, "doctor", home=root)
        server = ServerProcess(space.config, port, env={"HOME": str(root), **FAST_TICK})
        server.program = (*AS_NOBODY, *ServerProcess.program)
        server.start()
        try:
            wait_for_a_webhook(hook, server, 20)
        finally:
            assert server.stop() == 0
        log = server.log_text()
    finally:
        hook.stop()
        shutil.rmtree(root)
    assert doctor.returncode == 1, doctor.stderr  # a folder serve cannot use fails doctor
    assert doctor.stdout.splitlines()[-1] == (
        f"MISMATCH backups: cannot read {folder}: Permission denied (scheduled backups: every 1 h)"
    )
    assert "Traceback" not in log, log[-3000:]
    assert hook.texts() == [
        f"codelace-box: the scheduled backup failed: cannot read {folder}: Permission denied"
    ]


def test_a_copy_of_the_database_on_read_only_media_restores(tmp_path: Path) -> None:
    """The database file copied away by hand (`cp` while serve was stopped) is in WAL mode,
    and SQLite cannot open such a file read-only where it may not create its -shm beside it:
    restoring it from a read-only mount (or a folder the service user may only read) failed
    with 'cannot write the backup to .../codelace.db.restoring: the file cannot be opened',
    blaming the wrong file. With no WAL file beside it, it is read as the unchanging file it
    is."""
    space = make_workspace(tmp_path / "box")
    space.run("users", "create", "kept@example.com")
    space.run("credit", "kept@example.com", "3", "--reason", "before the copy")
    mounted = _tmpfs(tmp_path, "4M")
    media = next(mounted)
    try:
        space.sql("PRAGMA wal_checkpoint(TRUNCATE)")  # as the last program to close it does
        shutil.copy(space.db_path, media / "by-hand.db")  # the file alone, as `cp` copies it
        assert space.sql("PRAGMA journal_mode") == [("wal",)]
        subprocess.run(["mount", "-o", "remount,ro", str(media)], check=True)
        space.run("credit", "kept@example.com", "5", "--reason", "after the copy")
        restored = space.run("restore", str(media / "by-hand.db"))
    finally:
        mounted.close()  # unmounts
    assert "restored" in restored.stdout
    assert space.run("doctor").stdout.startswith("ok: ")
    assert space.json("users", "show", "kept@example.com")["credit_balance_usd"] == 3


def test_a_backup_to_a_full_disk_says_the_disk_is_full_and_leaves_nothing(
    tmp_path: Path, small_disk: Path
) -> None:
    """It said 'cannot write the backup to ...: not an error' (SQLite's backup step reports
    no message of its own), for `backup` and for every scheduled backup alike."""
    space = make_workspace(tmp_path / "box")
    space.run("users", "create", "kept@example.com")
    fill(small_disk)
    target = small_disk / "backup.db"
    line = space.fail("backup", str(target))
    assert line.startswith(f"error: cannot write the backup to {target}: the disk is full ")
    assert sorted(p.name for p in small_disk.iterdir()) == ["ballast"]


def test_a_command_on_a_full_disk_says_the_disk_is_full(tmp_path: Path, small_disk: Path) -> None:
    """A command whose write meets the full disk said 'unexpected FullError: ...', as if a
    bug; and with no room left at all SQLite cannot even open the file (its -shm) and says
    only 'disk I/O error'. Both are now one line saying the disk is full."""
    space = make_workspace(small_disk / "box")
    space.run("users", "create", "kept@example.com")
    fill(small_disk)
    credit = ("credit", "kept@example.com", "1", "--reason", "r" * 1000)  # the longest taken
    assert space.fail(*credit) == (
        "error: the database could not be written: database or disk is full (database.path "
        f"{space.db_path}: its disk is full)"
    )
    (small_disk / "box" / "data" / "codelace.db-shm").unlink()  # rebuilt at the next open
    fill(small_disk, "more-ballast")  # not even room for that
    for args in (credit, ("doctor",), ("serve",)):
        line = space.fail(*args)
        assert line.startswith(f"error: database.path {space.db_path}: cannot open the database")
        assert line.endswith(" (its disk is full)"), line


def test_the_database_disk_filling_up_is_alerted(tmp_path: Path, small_disk: Path) -> None:
    """Alerts promise a message when requests fail, but a full disk fails them before any
    usage is written, so none came: the upkeep now watches the database's disk itself."""
    hook, _, server = alerting_box(small_disk, tmp_path)
    try:
        server.start()
        time.sleep(1)  # ticks with room to spare say nothing
        assert hook.texts() == []
        fill(small_disk)
        wait_for_a_webhook(hook, server, 20)
        time.sleep(1)  # more ticks: the alert is not sent again
    finally:
        server.stop()
        hook.stop()
    folder = small_disk / "box" / "data"
    assert hook.texts() == [disk_full_alert(folder)]
    assert f"the database's disk is full ({folder})" in server.log_text()


def test_the_hold_sweep_on_a_full_disk_logs_one_line_and_frees_once_there_is_room(
    tmp_path: Path, small_disk: Path
) -> None:
    """A hold leaked by a settlement the full disk refused is freed by the sweep once there
    is room again; meanwhile each failed sweep is one line saying why (it was a traceback)."""
    fake = FakeOpenAI().start()
    space, port, key = metered_box(small_disk / "box", fake.base_url)
    server = ServerProcess(space.config, port, env={"CODELACE_HOLD_SWEEP_SEC": "0.2"})
    server.log_path = tmp_path / "serve.log"
    headers = {"authorization": f"Bearer {key}"}
    body = {"model": "fake/m", "messages": [{"role": "user", "content": "hi"}]}
    try:
        server.start()
        fake.push(Reply(delay_before=1.0, prompt_tokens=7, completion_tokens=8))
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(httpx.post, server.base_url + "/v1/chat/completions",
                                 json=body, headers=headers, timeout=30)  # fmt: skip
            while not (held := space.sql("SELECT owner FROM hold")):
                time.sleep(0.02)
            assert answer.result().status_code == 200
        [(owner,)] = held  # the server's own: a leak of its own is freed after a minute,
        # so this one is freed some seconds from now, once the disk is full
        leaked_at = str(datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=55))
        space.sql("INSERT INTO hold (user_id, amount_nanos, request_id, created_at, owner) "
                  "VALUES (1, 1000, 'req_leaked', ?, ?)", (leaked_at, owner))  # fmt: skip
        space.sql('UPDATE "user" SET held_nanos = 1000')
        ballast = fill_behind_an_empty_wal(space, small_disk)  # the sweep's write must grow it
        assert space.sql("SELECT request_id FROM hold") == [("req_leaked",)]
        deadline = time.monotonic() + 20
        failed = "releasing the holds of req_leaked failed: the database is unavailable; retry"
        while failed not in server.log_text():
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.1)
        ballast.unlink()
        while space.sql("SELECT COUNT(*) FROM hold") != [(0,)]:
            assert time.monotonic() < deadline + 10, server.log_text()
            time.sleep(0.1)
    finally:
        server.stop()
        fake.stop()
    log = server.log_text()
    assert "Traceback" not in log and "errors.ServiceUnavailable" not in log, log[-3000:]
    assert space.sql('SELECT held_nanos FROM "user"') == [(0,)]
    assert space.run("doctor").stdout.startswith("ok: ")


def test_a_start_without_its_database_says_it_made_a_new_empty_one(tmp_path: Path) -> None:
    """The data disk not mounted, database.path mistyped or the folder moved: serve made a
    new, empty database (and a new server secret) and said nothing, so the box came up with
    no users, keys or providers and no line in the log to tell why. A start on the database
    it finds says nothing of the kind."""
    port = free_port()
    space = make_workspace(tmp_path / "box", server={"port": port})
    server = ServerProcess(space.config, port)
    server.start()
    assert server.stop() == 0
    first = server.log_text()
    assert f"no database at {space.db_path}: created a new, empty one" in first
    secret = space.root / "data" / "secret_key"
    assert f"generated a new server secret in {secret}" in first
    server.log_path.unlink()
    server.start()
    assert server.stop() == 0
    again = server.log_text()
    assert "created a new, empty one" not in again and "new server secret" not in again


def _grow(space: Workspace, rows: int) -> None:
    """Ledger rows for the one account (its balance their sum): a database of some size."""
    space.sql(
        "BEGIN IMMEDIATE; "
        f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) "
        "INSERT INTO ledger_entry (user_id, amount_nanos, kind, reason, idempotency_key, "
        "created_at) SELECT 1, 1000, 'admin', 'grown ' || hex(randomblob(24)), 'grow:' || i, "
        f"'2026-01-01 00:00:00' FROM n; UPDATE \"user\" SET balance_nanos = 1000000000 + "
        f"1000 * {rows}; COMMIT;"
    )


def _lowest_free(disk: Path, stop: Any, lowest: list[int]) -> None:
    while not stop.is_set():
        stat = os.statvfs(disk)
        lowest[0] = min(lowest[0], stat.f_bavail * stat.f_frsize)
        time.sleep(0.0005)


def test_a_scheduled_backup_that_cannot_fit_never_fills_the_database_s_disk(
    tmp_path: Path, disk_32m: Path
) -> None:
    """Months in, the database outgrew the room left beside it (the backups are on its disk by
    default): every scheduled backup (retried each tick) wrote until the disk was full, then
    deleted its copy, so the serving box met a full disk again and again and its requests
    failed with 503. A copy that cannot fit with room to spare is not started."""
    import threading

    fake = FakeOpenAI().start()
    space, port, key = metered_box(disk_32m / "box", fake.base_url)
    _grow(space, 40_000)
    size = space.db_path.stat().st_size
    ballast = fill(disk_32m)
    os.truncate(ballast, ballast.stat().st_size - size * 2 // 3)  # room for 2/3 of a copy
    space.run("doctor")
    space.config.write_text(space.config.read_text() + "\n[backup]\nevery_hours = 1\n")
    server = ServerProcess(space.config, port, env={"CODELACE_UPKEEP_TICK_SEC": "0.2"})
    server.log_path = tmp_path / "serve.log"
    stop, lowest = threading.Event(), [size]
    watcher = threading.Thread(target=_lowest_free, args=(disk_32m, stop, lowest))
    statuses = []
    try:
        server.start()
        watcher.start()
        body = {"model": "fake/m", "messages": [{"role": "user", "content": "hi"}]}
        headers = {"authorization": f"Bearer {key}"}
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            reply = httpx.post(url, json=body, headers=headers, timeout=30, verify=TLS)
            statuses.append(reply.status_code)
            time.sleep(0.05)  # a steady trickle of traffic, not a flood that fills the disk
    finally:
        stop.set()
        watcher.join()
        server.stop()
        fake.stop()
    log = server.log_text()
    assert "the scheduled backup failed" in log, log[-2000:]
    assert lowest[0] > size // 8, f"the disk went down to {lowest[0]} bytes free"
    assert set(statuses) == {200}, statuses
    assert "the disk is full (the copy needs " in log, log[-2000:]
    assert "database or disk is full" not in log, log[-2000:]
    assert not list((space.root / "data" / "backups").glob("*"))


def test_a_database_on_a_disk_of_no_size_is_not_said_to_be_full(tmp_path: Path) -> None:
    """database.path under /proc, whose filesystem reports no size and no room: the line said
    'No such file or directory (its disk is full)', sending the operator to free space."""
    space = make_workspace(tmp_path / "box", database={"path": "/proc/codelace-x.db"})
    line = space.fail("migrate")
    assert line.startswith("error: database.path /proc/codelace-x.db: cannot open the database")
    assert "full" not in line, line
