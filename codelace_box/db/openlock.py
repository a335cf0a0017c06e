"""Who has the database open: `serve` and `admin` hold a shared lock on `<database>.lock` for
as long as they run; `restore` takes it exclusively, so it never replaces a file in use.

SQLite-specific (a database file on a local disk); the lock is flock(2), which the kernel drops
when a process ends however it ends, so a crash never leaves a stale lock behind. Another
database engine has no file to replace (restore refuses there).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from codelace_box.errors import CodelaceError, ConfigError, Conflict
from codelace_box.private_files import make_private_dir


@dataclass
class OpenMarker:
    """A held lock; `release()` (or the end of the process) lets it go."""

    fd: int | None

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the file drops its flock
            self.fd = None


def lock_path(db_path: str | Path) -> Path:
    """The lock file beside a database file."""
    path = Path(db_path)
    return path.with_name(path.name + ".lock")


def _open_lock(db_path: str | Path) -> int:
    target = lock_path(db_path)
    try:
        make_private_dir(target.parent)
        return os.open(target, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:  # e.g. data/ made by root, serve run as the service's user
        raise ConfigError(
            f"database.path {db_path}: cannot open {target.name} beside it: "
            f"{exc.strerror or exc} (the user running codelace-box must be able to write "
            "that folder)"
        ) from None


def hold_open(db_path: str | Path) -> OpenMarker:
    """Mark the database as open by this process (serve, admin); refused while a restore is
    replacing it."""
    if str(db_path) == ":memory:":
        return OpenMarker(None)
    fd = _open_lock(db_path)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise CodelaceError(
            f"{db_path} is being restored by `codelace-box restore`; try again when it is done"
        ) from None
    return OpenMarker(fd)


@contextmanager
def nobody_else(db_path: str | Path) -> Iterator[None]:
    """Hold the database for replacing it; Conflict while a serve or an admin has it open."""
    fd = _open_lock(db_path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(
                f"{db_path} is open in a running `codelace-box serve` or `admin`: stop them "
                "first (systemctl stop codelace-box; quit the dashboard), then restore",
                code="database_in_use",
            ) from None
        yield
    finally:
        os.close(fd)


def file_identity(db_path: str | Path) -> tuple[int, int] | None:
    """The (device, inode) of a database file, None when it is missing: a restore or a copy
    over it changes this."""
    try:
        stat = os.stat(db_path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def try_lead(path: str | Path) -> OpenMarker | None:
    """Take the exclusive lock on `path` if nobody holds it (one serve worker leads the
    background upkeep); None when another process leads."""
    make_private_dir(Path(path).parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return OpenMarker(fd)
