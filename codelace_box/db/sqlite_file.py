"""Opening the SQLite database file: its settings (WAL, the page cache, apsw's statement
cache), its privacy (a new file 600, -wal/-shm alike, its folder 700), a connect that
waits out another process switching a new file to WAL; and the words for a file that is not
where the config points or is empty (`missing_database`, the one wording of every command)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import apsw
from peewee import DatabaseError as PeeweeDatabaseError
from peewee import OperationalError as PeeweeOperationalError
from playhouse.apsw_ext import APSWDatabase

from codelace_box.config import DEFAULT_CONFIG_FILE, Config
from codelace_box.errors import ConfigError, NotReady
from codelace_box.private_files import (
    create_private_file,
    make_private,
    make_private_dir,
    user_name,
)

BUSY_TIMEOUT_SEC = 10.0
PRAGMAS = (
    ("journal_mode", "wal"),
    ("foreign_keys", 1),
    ("synchronous", "normal"),
    ("cache_size", -16000),
    ("temp_store", "memory"),
    # A WAL a long read let grow (a backup under load) is cut back to this when it starts
    # over, instead of keeping its largest size on the disk for ever; above the ~80 MB the
    # serving loop's checkpoints let it reach (db/wal.py), so their cycles never cut it.
    ("journal_size_limit", 96 * 1024 * 1024),
)
# apsw's statement cache is a ring: a statement not run again within `size` executions is
# dropped, and every execution scans the ring for its SQL (on average half of it). Measured in
# instructions per request (callgrind) at 1, 16 and 64 concurrent against 256: 96 is 1.7%,
# 1.1% and 0.3% fewer; 64 barely better; 32 drops the request's own statements at 64 concurrent
# (each group commit compiled them again: 10% more).
_CACHE = {"statementcachesize": 96}
CONNECT_RETRY_SEC = 0.01
# the database.path open_sqlite_file opened last (for write_failure_where)
_opened: list[str] = [""]


POINT_AT_IT = "--config PATH, CODELACE_CONFIG or database.path"
NEW_BOX_HINT = (
    f"point at yours with {POINT_AT_IT}, or run `codelace-box migrate` to start a new box"
)


def config_read(config: Config) -> str:
    """The config a command read, as the notes name it."""
    source = config.source
    return f"{source}, no ./{DEFAULT_CONFIG_FILE}" if source == "built-in defaults" else source


def missing_database(config: Config, hint: str = NEW_BOX_HINT) -> str | None:
    """Why the configured SQLite file cannot be opened as it is: it is not there, or it is a
    file of 0 bytes (empty_sqlite_file: no database either), in the words every command and
    the scheduled backup use (the path, the config read, then `hint`: by default how to point
    at the right one); None when it is a database (or the database is PostgreSQL or in
    memory)."""
    database = config.database
    path = database.path
    if database.is_postgres or path == ":memory:":
        return None
    if empty_sqlite_file(path):
        what = "an empty file of 0 bytes: a wrong path, or a copy that failed?; "
        done = "nothing was changed"
    elif not _there(path):
        what, done = "", "nothing was created"
    else:
        return None
    return (
        f"no database at {os.path.abspath(path)} ({what}config: {config_read(config)}; "
        f"{done}): {hint}"
    )


def made_database(path: str, was_empty: bool) -> str:
    """What a command (and serve) says of the database it made at `path` (absolute): it was
    not there, or it was a file of 0 bytes (empty_sqlite_file). The caller adds its hint."""
    if was_empty:
        return (
            f"the database at {path} was an empty file (0 bytes: a wrong path, or a copy that "
            "failed?): made a new, empty database in it"
        )
    return f"no database at {path}: created a new, empty one"


def nothing_at(path: str) -> bool:
    """Whether nothing is at `path` (a folder there, or a file in the way of its folder, is
    something: the opening names those)."""
    return not _there(path)


def _there(path: str) -> bool:
    """Whether something is at `path`, or something in the way says why not (a folder there,
    a file where a folder should be: the opening names those)."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


def empty_sqlite_file(path: str) -> bool:
    """Whether `path` is a file of 0 bytes with no write-ahead log holding pages beside it:
    no database yet (opening it makes a new, empty one), almost always a mistake (a wrong path
    to a file just touched, a copy that failed before its first byte)."""
    try:
        if os.stat(path).st_size != 0:
            return False
        return os.stat(path + "-wal").st_size == 0
    except FileNotFoundError as exc:
        return exc.filename == path + "-wal"
    except OSError:
        return False


def open_sqlite_file(path: str) -> APSWDatabase:
    """The SQLite file at `path`, connected (a ConfigError saying why it cannot be)."""
    target = Path(path)
    db = APSWDatabase(str(target), pragmas=PRAGMAS, timeout=BUSY_TIMEOUT_SEC, **_CACHE)
    try:
        if str(path) != ":memory:":
            refuse_not_a_file(str(path))  # a folder there, or one it may not enter: said
            make_private_dir(target.parent)
            if not create_private_file(target):
                make_private(target)
        _connect_when_free(db)
    except (FileExistsError, NotADirectoryError):  # mkdir met a file where a folder should be
        raise ConfigError(
            f"database.path {path}: cannot open the database: a file is in the way of its folder"
        ) from None
    except (OSError, apsw.Error, PeeweeDatabaseError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        # SQLite makes the -wal and -shm beside the file a symbolic link names (another disk)
        real = Path(os.path.realpath(target))
        trouble = disk_trouble(real) or not_ours(real)
        raise NotReady(  # its disk, its rights, a lock: mended outside the config
            f"database.path {path}: cannot open the database: {reason}{trouble}"
        ) from None
    _opened[0] = "" if str(path) == ":memory:" else str(path)
    return db


def write_failure_where(exc: BaseException) -> str:
    """' (database.path PATH: what helps)' for SQLite failing to write the file it opened
    (`exc` storage_failed): a file of it this user may not write (its mode and owner), or its
    disk full or read-only (SQLite itself says only 'attempt to write a readonly database',
    'database or disk is full'); '' for any other failure. Only a failure's line calls it."""
    path = _opened[0]
    if not path or not storage_failed(exc):
        return ""
    real = Path(os.path.realpath(path))
    why = _unwritable(real) or disk_state(real)
    return f" (database.path {path}: {why})" if why else f" (database.path {path})"


def _unwritable(target: Path) -> str:
    """'the file is mode 0400, owned by USER: make it writable by ...' for the database or its
    -wal or -shm file when this user may not write it; else ''."""
    for name in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
        try:
            seen = name.stat()
        except OSError:
            continue
        if not os.access(name, os.W_OK):
            which = "the file" if name == target else str(name)
            return (
                f"{which} is mode {stat.S_IMODE(seen.st_mode):04o}, owned by "
                f"{user_name(seen.st_uid)}: make it writable by the user running codelace-box"
            )
    return ""


def not_ours(target: Path) -> str:
    """' (FILE belongs to OWNER and the user running codelace-box may not read and write it:
    chown it, with every file beside it named DB*, ...)' for the database or its -wal or -shm
    file when this user may not (a command run as root made them: SQLite itself says only
    'unable to open database file'); else what folder_not_ours says."""
    for name in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
        try:
            owner = name.stat().st_uid
        except OSError:
            continue
        if not os.access(name, os.R_OK | os.W_OK):
            return (
                f" ({name} belongs to {user_name(owner)} and the user running codelace-box "
                "may not read and write it: chown it, with every file beside it named "
                f"{target.name}* (its -wal and -shm, the lock files a root serve leaves), to "
                "that user)"
            )
    return folder_not_ours(target.parent)


def folder_not_ours(folder: Path) -> str:
    """' (its folder DIR belongs to OWNER and the user running codelace-box may not write in
    it, ...)' when this user may not make files in the database's folder (SQLite makes the
    -wal and -shm files there, and itself says only 'attempt to write a readonly database');
    else ''."""
    try:
        owner = folder.stat().st_uid
    except OSError:
        return ""
    if os.access(folder, os.W_OK | os.X_OK):
        return ""
    return (
        f" (its folder {folder} belongs to {user_name(owner)} and the user running "
        "codelace-box may not write in it, where SQLite makes the database's -wal and -shm "
        "files: chown the folder to that user)"
    )


def refuse_not_a_file(path: str) -> None:
    """A ConfigError when a folder, a device, a pipe or a socket is at database.path `path`,
    or a file where one of its folders should be (opening it, or a restore putting a file in
    its place, would fail on it as a bug, or name something else), or when this user may not
    even look there (root's data/, 700): the line opening it gives, naming the folder."""
    try:
        _refuse_not_a_file(path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        whose = not_ours(Path(os.path.realpath(path)))
        raise NotReady(f"database.path {path}: cannot open the database: {reason}{whose}") from None


def _refuse_not_a_file(path: str) -> None:
    target = Path(path)
    if any(folder.exists() and not folder.is_dir() for folder in target.parents):
        raise ConfigError(
            f"database.path {path}: cannot open the database: a file is in the way of its folder"
        )
    if target.is_dir():
        raise ConfigError(f"database.path {path}: is a folder; name the database file in it")
    if target.exists() and not target.is_file():
        raise ConfigError(
            f"database.path {path}: is not a regular file (a device, a pipe or a socket): "
            "name the database file"
        )


def disk_trouble(target: Path) -> str:
    """' (its disk is full)' or ' (its disk is read-only)' when the database's folder is on
    such a disk (SQLite itself says only 'disk I/O error'); else ''."""
    state = disk_state(target)
    return f" ({state})" if state else ""


def disk_state(target: Path) -> str:
    """'its disk is full' or 'its disk is read-only' for the disk of `target`'s folder; ''
    otherwise. Full only for a disk that reports a size: /proc, sysfs and the like report
    no blocks at all, and no room, which says nothing of a full disk."""
    try:
        disk = os.statvfs(target.parent)
    except OSError:
        return ""
    if disk.f_flag & os.ST_RDONLY:
        return "its disk is read-only"
    return "its disk is full" if disk.f_blocks > 0 and disk.f_bavail == 0 else ""


def _connect_when_free(db: APSWDatabase) -> None:
    """Connect (the pragmas run then). While another process switches a new file to WAL,
    SQLite refuses `journal_mode = wal` at once, without its busy wait ('database is locked':
    one of three `migrate`s started together on a new file, about one time in 120): try again
    within the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_SEC
    while True:
        try:
            db.connect(reuse_if_open=True)
            return
        except (apsw.BusyError, PeeweeOperationalError) as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(CONNECT_RETRY_SEC)


# SQLite could not write (or open) its file: the disk is full or read-only, or failing.
STORAGE_ERRORS = (apsw.FullError, apsw.ReadOnlyError, apsw.IOError, apsw.CantOpenError)


def storage_failed(exc: BaseException) -> bool:
    """Whether `exc` (or the apsw error peewee wrapped in it) is SQLite failing to write its
    file: a 503 for the client and one line for the operator, not a bug's traceback."""
    seen = [exc, exc.__cause__, exc.__context__, getattr(exc, "orig", None), *exc.args[:1]]
    return any(isinstance(error, STORAGE_ERRORS) for error in seen)


def read_only_rows(path: str, sql: str) -> list[tuple[object, ...]] | None:
    """The rows of one query on a SQLite file opened read-only, never created nor migrated;
    None when the file or the table cannot be read (a file that is not a database, an old one)."""
    try:
        connection = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
    except apsw.Error:
        return None
    try:
        return [tuple(row) for row in connection.execute(sql)]
    except apsw.Error:
        return None
    finally:
        connection.close()
