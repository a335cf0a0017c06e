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

from tests.foundation.test_disk_trouble import AS_NOBODY, _made_by_root
from tests.support import PROGRAM, cli_env

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
        doctor = subprocess.run(
            [*AS_NOBODY, *PROGRAM, "--config", str(space.config), "doctor"],
            capture_output=True, text=True, timeout=30, env=cli_env({"HOME": str(root)}),
            check=False,
        )  # fmt: skip
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
