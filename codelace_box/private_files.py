"""Files only the box's own user may read: the folders it creates 700, the files it creates 600.

The database holds emails, balances, usage and payments, so whatever the umask: a folder the
box creates for its data (or for backups) is made with mode 700, and the files it creates (the
database, the server secret, backups) with mode 600. SQLite gives a database's -wal, -shm and
-journal files the mode of the database file itself, so those follow. A folder that already
exists keeps the mode its owner gave it (it may be a shared working directory); a database or
server secret file an earlier version left readable by others is made private when the box
opens it (`make_private`), so upgrading is enough.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dir(path: Path) -> None:
    """Make sure the folder `path` exists; if it has to be created, its mode is 700 (missing
    parents above it are created as usual)."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, PRIVATE_DIR_MODE)
    except FileExistsError:
        if path.is_dir():  # another process made it meanwhile
            return
        raise
    os.chmod(path, PRIVATE_DIR_MODE)  # the umask may have taken bits from the owner


def create_private_file(path: Path) -> bool:
    """Create `path` empty with mode 600 unless something is there already; True if created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)
    return True


def make_private(path: Path) -> None:
    """Take the group's and others' access to an existing file of the box away (a regular file
    only: a path set to /dev/null, a pipe or a socket is no file of the box's)."""
    try:
        status = path.stat()
        mode = stat.S_IMODE(status.st_mode)
        if mode & 0o077 and stat.S_ISREG(status.st_mode):  # never a device: /dev/null 600
            os.chmod(path, mode & 0o700)
    except OSError:  # not there, or not ours: opening it says what is wrong
        return


def other_owner(path: Path) -> str | None:
    """The name of the user owning `path` when it is not the user running this process (a file
    root left behind), else None (ours, or not there)."""
    try:
        owner = path.stat().st_uid
    except OSError:
        return None
    return None if owner == os.geteuid() else user_name(owner)


def user_name(uid: int) -> str:
    """A user's name, or `uid N` when the system names none."""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def replace_private_file(path: Path, text: str) -> None:
    """Write `text` to `path` (mode 600) whole or not at all: a new file beside it, renamed
    over it, so a reader meanwhile finds the old text or the new, never an empty or half one
    (OSError as os gives it; nothing of it is left behind)."""
    staged = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(staged, path)
    except BaseException:
        with contextlib.suppress(OSError):
            staged.unlink(missing_ok=True)
        raise
