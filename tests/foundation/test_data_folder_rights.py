"""A database file the service user owns in a folder it may not write: SQLite makes the -wal
and -shm files beside the database, so every command fails; the line says which folder and
whose it is, not only SQLite's "attempt to write a readonly database"."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.foundation.test_disk_trouble import _made_by_root, _tmpfs
from tests.support import AS_NOBODY, PROGRAM, as_nobody, cli_env

pytestmark = pytest.mark.timeout(60)


@contextmanager
def a_folder_of_roots() -> Iterator[Path]:
    """A folder under /tmp (755: nobody may pass through it) for a test that runs commands
    as the service's user (nobody), deleted after; the test is skipped when not run as root."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a command as another user")
    root = Path(tempfile.mkdtemp(prefix="codelace-perm-", dir="/tmp"))
    try:
        os.chmod(root, 0o755)
        yield root
    finally:
        shutil.rmtree(root)


def nobodys_box(root: Path) -> Path:
    """The service user's own folder in `root` (where the README's systemd section runs)."""
    box = root / "box"
    box.mkdir(exist_ok=True)
    os.chown(box, 65534, 65534)
    return box


def as_the_service(cwd: Path, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`codelace-box ARGS` run by nobody from `cwd`."""
    return subprocess.run(
        [*AS_NOBODY, *PROGRAM, *args], capture_output=True, text=True, timeout=30,
        cwd=cwd, env=cli_env({"HOME": str(root)}), check=False,
    )  # fmt: skip


def test_a_database_in_a_folder_the_user_cannot_write_names_the_folder_and_its_owner() -> None:
    """root made data/ with the first command; the operator gave the database file (every
    file named codelace.db*, here the database alone, closed) to the service's user, as the
    line about a file of another user says, but not its folder (root's, others may enter and
    read it). `doctor`, `users list`, every command then said only `cannot open the database:
    attempt to write a readonly database` of a file this user owns and may write."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a command as another user")
    root = Path(tempfile.mkdtemp(prefix="codelace-perm-", dir="/tmp"))
    try:
        space = _made_by_root(root)
        data = root / "box" / "data"
        os.chmod(data, 0o755)  # root's, which others may enter but not write
        closed = sqlite3.connect(data / "codelace.db")  # the last to close it: no -wal, -shm
        closed.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        closed.close()
        assert sorted(path.name for path in data.iterdir()) == ["codelace.db"]
        for path in data.glob("codelace.db*"):
            os.chown(path, 65534, 65534)
        doctor = as_nobody(space.config, "doctor", home=root)
    finally:
        shutil.rmtree(root)
    assert doctor.returncode == 1, doctor.stderr
    [line] = doctor.stderr.splitlines()
    db = data / "codelace.db"
    assert line == (
        f"error: database.path {db}: cannot open the database: attempt to write a readonly "
        f"database (its folder {data} belongs to root and the user running codelace-box may "
        "not write in it, where SQLite makes the database's -wal and -shm files: chown the "
        "folder to that user)"
    )


def test_a_database_kept_on_another_disk_names_the_folder_it_is_in() -> None:
    """database.path a symbolic link to the database on another disk (as the README's restore
    allows): SQLite makes the -wal and -shm files beside the file the link names, in that
    folder, but the line looked at the link's own folder (the service user's) and said only
    'attempt to write a readonly database'."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a command as another user")
    root = Path(tempfile.mkdtemp(prefix="codelace-perm-", dir="/tmp"))
    try:
        space = _made_by_root(root)
        data, disk = root / "box" / "data", root / "disk"
        disk.mkdir(mode=0o755)  # root's, which others may enter but not write
        closed = sqlite3.connect(data / "codelace.db")  # the last to close it: no -wal, -shm
        closed.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        closed.close()
        shutil.move(data / "codelace.db", disk / "codelace.db")
        (data / "codelace.db").symlink_to(disk / "codelace.db")
        for path in (data, disk / "codelace.db"):
            os.chown(path, 65534, 65534)  # the link's folder and the database: the user's
        doctor = as_nobody(space.config, "doctor", home=root)
    finally:
        shutil.rmtree(root)
    assert doctor.returncode == 1, doctor.stderr
    [line] = doctor.stderr.splitlines()
    assert line.endswith(
        f"attempt to write a readonly database (its folder {disk} belongs to root and the "
        "user running codelace-box may not write in it, where SQLite makes the database's "
        "-wal and -shm files: chown the folder to that user)"
    ), line


def test_a_database_kept_on_a_read_only_disk_says_so(tmp_path: Path) -> None:
    """database.path a symbolic link to the database on another disk, mounted read-only: the
    line looked at the link's own disk and said only SQLite's words, not that the disk the
    database is on is read-only."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a disk")
    for disk in _tmpfs(tmp_path, "4M"):
        (tmp_path / "space").mkdir()
        space = _made_by_root(tmp_path / "space")
        data = tmp_path / "space" / "box" / "data"
        closed = sqlite3.connect(data / "codelace.db")  # the last to close it: no -wal, -shm
        closed.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        closed.close()
        shutil.move(data / "codelace.db", disk / "codelace.db")
        (data / "codelace.db").symlink_to(disk / "codelace.db")
        remounted = subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=False)
        assert remounted.returncode == 0
        line = space.fail("doctor")
        assert line.rstrip().endswith("(its disk is read-only)"), line


@pytest.mark.parametrize("command", [("doctor",), ("users", "list")])
def test_a_data_folder_the_user_cannot_enter_names_it_for_every_command(
    command: tuple[str, ...],
) -> None:
    """root ran the first command (`providers add` without `sudo -u codelace`) and made data/,
    700; the service's user then ran `doctor`, `users list`, any command but `serve`: each said
    `unexpected PermissionError: [Errno 13] Permission denied: '.../codelace.db'`, a bug's line
    (serve names the folder). Now the line names database.path, the folder and its owner."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a command as another user")
    root = Path(tempfile.mkdtemp(prefix="codelace-perm-", dir="/tmp"))
    try:
        space = _made_by_root(root)  # data/ is root's, 700: nobody may not even look in it
        os.chown(root / "box", 65534, 65534)
        ran = as_nobody(space.config, *command, home=root)
    finally:
        shutil.rmtree(root)
    assert ran.returncode == 1, ran.stderr
    [line] = ran.stderr.splitlines()
    data = root / "box" / "data"
    assert line == (
        f"error: database.path {data / 'codelace.db'}: cannot open the database: Permission "
        f"denied (its folder {data} belongs to root and the user running codelace-box may not "
        "write in it, where SQLite makes the database's -wal and -shm files: chown the folder "
        "to that user)"
    )


def test_init_force_over_a_config_it_cannot_read_keeps_it() -> None:
    """root ran `init` (its codelace.toml, 600); the service's user, whose folder it is, ran
    `init --force` to make the file its own: init could not read the old file, so found no
    secret in it, and replaced it with a new one, the secret the stored provider keys were
    encrypted with lost for good. Now it refuses, naming the file and its owner, and leaves
    it as it was."""
    with a_folder_of_roots() as root:
        box = nobodys_box(root)
        config = box / "codelace.toml"
        text = '[server]\nsecret_key = "file-secret-0123456789abcdef"\n'
        config.write_text(text)
        os.chmod(config, 0o600)  # root's, as a root init leaves it
        ran = as_the_service(box, root, "init", "--force")
        kept = config.read_text()
    assert ran.returncode == 1, (ran.stdout, ran.stderr)
    assert kept == text
    assert ran.stderr == (
        "error: codelace.toml: cannot read it (Permission denied; it belongs to root), so init "
        "cannot keep the server secret it may hold (the provider keys stored with it would be "
        "lost): run init as a user that may read it, or move the file away first to start "
        "anew\n"
    )


def test_init_over_a_data_folder_it_cannot_enter_names_the_folder() -> None:
    """root ran the first command (`providers add`, no config file: the server secret went to
    data/secret_key, data/ root's, 700); the service's user then ran `init` in its own folder
    to write the config: it said `unexpected PermissionError: ... data/secret_key`, a bug's
    line. Now one line names the secret's file and whose folder it is in."""
    with a_folder_of_roots() as root:
        box = root / "box"
        box.mkdir()
        added = subprocess.run(
            [*PROGRAM, "providers", "add", "openai", "--kind", "openai", "--key", "k-1"],
            capture_output=True, text=True, timeout=30, cwd=box, env=cli_env(), check=False,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        os.chown(box, 65534, 65534)
        ran = as_the_service(box, root, "init")
        left = sorted(path.name for path in box.iterdir())
    assert ran.returncode == 1, (ran.stdout, ran.stderr)
    assert left == ["data"], "no config written"
    data = box / "data"
    assert ran.stderr == (
        f"error: {data / 'secret_key'}: cannot read the server secret: Permission denied (its "
        f"folder {data} belongs to root: chown it to the user running codelace-box)\n"
    )


def test_a_port_below_1024_says_to_serve_behind_the_proxy() -> None:
    """`serve --port 443` (or 80) by the service's user said only `Permission denied`: the
    line now says why and what to do instead."""
    with a_folder_of_roots() as root:
        ran = as_the_service(nobodys_box(root), root, "serve", "--port", "443")
    assert ran.returncode == 78, ran.stderr  # EX_CONFIG: no restart mends it
    assert ran.stderr.splitlines()[-1] == (
        "error: cannot listen on 127.0.0.1:443: Permission denied (a port below 1024 needs "
        "root: serve on a higher one, such as the default 8080, behind the reverse proxy)"
    )


def test_a_backup_into_a_folder_the_user_cannot_enter_is_one_line() -> None:
    """The service's user ran `backup backups/x.db` into a folder root had made (700, by a
    first backup run as root): it said `unexpected PermissionError: [Errno 13] Permission
    denied: 'backups/x.db'`, a bug's line, as it looked whether the file was there already."""
    with a_folder_of_roots() as root:
        box = nobodys_box(root)
        assert as_the_service(box, root, "users", "create", "first@example.com").returncode == 0
        (box / "backups").mkdir(mode=0o700)  # root's
        ran = as_the_service(box, root, "backup", "backups/x.db")
    assert ran.returncode == 1, ran.stderr
    assert ran.stderr == (
        "error: cannot write the backup to backups/x.db: Permission denied (its folder "
        "backups belongs to root: chown it to the user running codelace-box, or name another "
        "PATH)\n"
    )


def test_a_restore_from_a_folder_the_user_cannot_enter_is_one_line() -> None:
    """The service's user ran `restore backups/x.db` where backups/ was root's (700, made by a
    backup run as root): it said `unexpected PermissionError: [Errno 13] Permission denied:
    'backups/x.db'`, a bug's line, from its look whether the backup was there."""
    with a_folder_of_roots() as root:
        box = nobodys_box(root)
        assert as_the_service(box, root, "users", "create", "first@example.com").returncode == 0
        (box / "backups").mkdir(mode=0o700)  # root's
        shutil.copy(box / "data" / "codelace.db", box / "backups" / "x.db")
        ran = as_the_service(box, root, "restore", "backups/x.db")
    assert ran.returncode == 1, ran.stderr
    assert ran.stderr == (
        "error: cannot read the backup backups/x.db: Permission denied (its folder backups "
        "belongs to root: run restore as a user that may read it, or copy the backup where "
        "this user may)\n"
    )


def test_a_restore_into_a_data_folder_the_user_cannot_enter_is_one_line() -> None:
    """The service's user ran `restore` with its backup at hand while data/ was root's (700,
    made by a first command run as root): it said `unexpected PermissionError: [Errno 13]
    Permission denied: '.../data/codelace.db'`, a bug's line; now the line every other command
    gives, naming the folder and its owner."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a command as another user")
    root = Path(tempfile.mkdtemp(prefix="codelace-perm-", dir="/tmp"))
    try:
        space = _made_by_root(root)  # data/ is root's, 700
        box, data = root / "box", root / "box" / "data"
        shutil.copy(data / "codelace.db", box / "x.db")
        for path in (box, box / "x.db"):
            os.chown(path, 65534, 65534)
        ran = as_nobody(space.config, "restore", str(box / "x.db"), home=root)
    finally:
        shutil.rmtree(root)
    assert ran.returncode == 1, ran.stderr
    assert ran.stderr == (
        f"error: database.path {data / 'codelace.db'}: cannot open the database: Permission "
        f"denied (its folder {data} belongs to root and the user running codelace-box may not "
        "write in it, where SQLite makes the database's -wal and -shm files: chown the folder "
        "to that user)\n"
    )


def test_init_into_a_folder_the_user_cannot_enter_is_one_line() -> None:
    """`--config /etc/codelace/codelace.toml init` by a user who may not enter that folder
    (root's, 700) said `unexpected PermissionError`, a bug's line, from its look whether the
    file was there; now the line of a file it cannot write, as for a folder it may only read."""
    with a_folder_of_roots() as root:
        folder = root / "etc"
        folder.mkdir(mode=0o700)  # root's
        target = folder / "codelace.toml"
        ran = as_the_service(root, root, "--config", str(target), "init")
    assert ran.returncode == 1, ran.stderr
    assert ran.stderr == f"error: {target}: cannot write: Permission denied\n"


def test_a_database_file_read_only_for_its_owner_names_it_and_its_mode() -> None:
    """The service's user owns its folder and the database, but the file is read-only for it
    (`chmod 400`): a write command and `serve`'s start said only `the database could not be
    written: attempt to write a readonly database`, no path, nothing of what to do. Now the
    line names database.path and says to make the file writable by that user."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a command as another user")
    root = Path(tempfile.mkdtemp(prefix="codelace-perm-", dir="/tmp"))
    try:
        space = _made_by_root(root)
        for path in (root / "box", *(root / "box").rglob("*")):
            os.chown(path, 65534, 65534)  # all given over to the service's user
        os.chmod(space.db_path, 0o400)
        runs = [as_nobody(space.config, *args, home=root) for args in WRITES]
    finally:
        shutil.rmtree(root)
    db = space.db_path
    for run in runs:
        assert run.returncode == 1, run.stderr
        assert run.stderr.splitlines()[-1] == (
            f"error: the database could not be written: attempt to write a readonly database "
            f"(database.path {db}: the file is mode 0400, owned by nobody: make it writable by "
            "the user running codelace-box)"
        )


WRITES = (("users", "create", "second@example.com"), ("serve",))
