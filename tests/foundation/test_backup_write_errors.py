"""A backup whose copy meets a write error that is no full disk: a file size limit (RLIMIT_FSIZE,
a FAT32 stick's 4 GiB), a disk quota, a failing disk. SQLite says only 'disk I/O error' there,
and its backup step not even that: `backup` said 'error: the database could not be written: not
an error', blaming the database it only reads. Now it names the copy and the failure (as a
scheduled backup, which makes its copy the same way, does), and nothing of the copy is left.
`db copy` to a SQLite file whose writes fail (its disk full, a size limit) said 'the database
could not be written: database or disk is full', which reads as the configured database (the
one it copies from, which it only reads): now it says the copy's target could not be written
and that nothing was copied."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.foundation.conftest import make_workspace
from tests.foundation.test_disk_trouble import _grow
from tests.support import PROGRAM, cli_env

LIMIT = 200_000  # bytes a file of the process may reach


def test_a_backup_past_a_file_size_limit_says_so_and_leaves_nothing(tmp_path: Path) -> None:
    space = make_workspace(tmp_path / "box")
    space.run("users", "create", "kept@example.com")
    space.run("credit", "kept@example.com", "1", "--reason", "test")  # the 1 USD _grow adds to
    _grow(space, 3000)
    assert space.db_path.stat().st_size > LIMIT
    folder = tmp_path / "copies"
    folder.mkdir()
    target = folder / "copy.db"
    done = subprocess.run(
        ["prlimit", f"--fsize={LIMIT}", *PROGRAM, "--config", str(space.config), "backup",
         str(target)],
        capture_output=True, text=True, env=cli_env(), timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout
    assert done.stderr.splitlines() == [
        f"error: cannot write the backup to {target}: a read or write failed with an I/O error "
        "(a failing disk, a file size limit or a disk quota)"
    ]
    assert list(folder.iterdir()) == []
    assert space.run("doctor").stdout.startswith("ok: ")


def test_a_db_copy_whose_target_cannot_be_written_says_it_is_the_target(tmp_path: Path) -> None:
    space = make_workspace(tmp_path / "box")
    space.run("users", "create", "kept@example.com")
    space.run("credit", "kept@example.com", "1", "--reason", "test")
    _grow(space, 3000)
    target = f"sqlite:///{tmp_path}/copy.db"
    done = subprocess.run(
        ["prlimit", f"--fsize={LIMIT}", *PROGRAM, "--config", str(space.config), "db", "copy",
         "--to", target],
        capture_output=True, text=True, env=cli_env(), timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout
    assert done.stderr.splitlines() == [
        "error: cannot write the copy to the target database: disk I/O error; nothing was copied"
    ]
    copied = space.run("db", "copy", "--to", target)  # once it can: the target is still empty
    assert copied.stdout.startswith("copied "), copied.stdout
