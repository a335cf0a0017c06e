"""A database file the service user owns in a folder it may not write: SQLite makes the -wal
and -shm files beside the database, so every command fails; the line says which folder and
whose it is, not only SQLite's "attempt to write a readonly database"."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.foundation.test_disk_trouble import _made_by_root, _tmpfs
from tests.support import as_nobody

pytestmark = pytest.mark.timeout(60)


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
