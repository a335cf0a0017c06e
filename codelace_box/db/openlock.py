"""Who has the database open: `serve` and `admin` hold a shared lock on `<database>.lock` for
as long as they run; `restore` takes it exclusively, so it never replaces a file in use.

SQLite-specific (a database file on a local disk); the lock is flock(2), which the kernel drops
when a process ends however it ends, so a crash never leaves a stale lock behind. Another
database engine has no file to replace (restore refuses there).
"""

from __future__ import annotations

import fcntl
import os
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from codelace_box.errors import CodelaceError, ConfigError, Conflict, NotReady
from codelace_box.private_files import make_private_dir, other_owner


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
        raise NotReady(
            f"database.path {db_path}: cannot open {target.name} beside it: "
            f"{exc.strerror or exc} ({_whose(target)})"
        ) from None


def _whose(target: Path) -> str:
    """Why a lock file could not be opened: one another user left (root ran serve once, its
    lock files stay root's and 600), or a folder this user may not write."""
    if (owner := other_owner(target)) is not None:
        return f"{target} belongs to {owner}: chown it to the user running codelace-box"
    return "the user running codelace-box must be able to write that folder"


def hold_open(db_path: str | Path) -> OpenMarker:
    """Mark the database as open by this process (serve, admin); refused while a restore is
    replacing it."""
    if str(db_path) == ":memory:":
        return OpenMarker(None)
    return _shared(_open_lock(db_path), db_path)


def _shared(fd: int, db_path: str | Path) -> OpenMarker:
    """A shared flock on the open lock file `fd`; refused while a restore holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise CodelaceError(
            f"{db_path} is being restored by `codelace-box restore`; try again when it is done"
        ) from None
    return OpenMarker(fd)


def hold_for_command(db_path: str | Path) -> OpenMarker:
    """A shared hold on the lock file for a command (`credit`, `users create`, ...) while it
    runs: refused during a restore, whose set-aside file would otherwise take what the command
    wrote (it said done, the restored database never had it), and a restore refused meanwhile.
    The file is not made here (a command run as root would leave it root's, and serve as the
    service user could not open it): a restore makes it first; without it, or one this user may
    not read, the command holds nothing and goes on as before."""
    if str(db_path) == ":memory:":
        return OpenMarker(None)
    try:
        fd = os.open(lock_path(db_path), os.O_RDONLY)
    except OSError:
        return OpenMarker(None)
    return _shared(fd, db_path)


@contextmanager
def nobody_else(db_path: str | Path) -> Iterator[None]:
    """Hold the database for replacing it; Conflict while a serve or an admin has it open."""
    fd = _open_lock(db_path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(
                f"{db_path} is open in a running `codelace-box serve`, `admin` or other "
                "codelace-box command: stop them first (systemctl stop codelace-box; quit the "
                "dashboard; let the command finish), then restore",
                code="database_in_use",
            ) from None
        if _open_in_another_process(db_path):
            raise Conflict(
                f"{db_path} is open in another program (a sqlite3 shell, a script, another "
                "tool): close it first, then restore",
                code="database_in_use",
            )
        yield
    finally:
        os.close(fd)


# SQLite's own locks (os_unix.c): every connection of a WAL database holds a read lock on the
# "dead man switch" byte of its -shm file, and one on the SHARED range of the database file,
# for as long as it has the file open. F_GETLK asks whether another process holds them.
_SHM_DMS_BYTE = (128, 1)
_SHARED_RANGE = (0x40000002, 510)
_FLOCK = "hhqqi"  # Linux's struct flock: type, whence, start, len, pid (the buffer is padded)


def _open_in_another_process(db_path: str | Path) -> bool:
    """Whether another process has the SQLite database open (on Linux; elsewhere only the lock
    file of serve and admin speaks)."""
    if not sys.platform.startswith("linux"):
        return False
    return _read_locked(f"{db_path}-shm", *_SHM_DMS_BYTE) or _read_locked(
        str(db_path), *_SHARED_RANGE
    )


def _read_locked(path: str, start: int, length: int) -> bool:
    """Whether another process holds a POSIX lock on these bytes of `path` (a missing file:
    no)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        asked = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, start, length, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, asked + bytes(16))
    finally:
        os.close(fd)
    return struct.unpack_from(_FLOCK, answer)[0] != fcntl.F_UNLCK


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
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except PermissionError as exc:  # logged once while it lasts, with no traceback
        raise ConfigError(f"cannot open {path}: {exc.strerror} ({_whose(Path(path))})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return OpenMarker(fd)
