"""Online backup with SQLite's backup API: a consistent copy while other processes write.

The whole copy is one backup step inside one read transaction of the source. In WAL mode that
transaction is a snapshot: writers (a running `serve`) carry on undisturbed, and the copy is
the database exactly as it was at one instant. (Copying in many small steps would restart
from scratch whenever another process writes, and might never finish under steady traffic.)
The copy is written beside the target, checked, switched to a rollback journal so it is one
self-contained file, and only then renamed into place. It is private like the database: mode
600, and a folder created for it 700, whatever the umask. A copy that would leave its disk
with less than 1% of it free (1 to 64 MiB) is not started (the backups' folder is on the
database's disk by default: a copy written until that disk was full failed anyway, and the
serving box's writes failed with it, at every scheduled try).
A copy given a `stop` event (serve's scheduled one) steps STEP_PAGES at a time inside that one
read transaction, and its check is interrupted, once the event is set: a stopping serve does
not wait for the copy of a big database (BackupStopped, nothing left behind).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from urllib.parse import quote

import apsw

from codelace_box.errors import CodelaceError
from codelace_box.private_files import create_private_file, make_private_dir, other_owner

BUSY_TIMEOUT_MS = 10_000
MIB = 2**20
SPARE_MIN_BYTES, SPARE_MAX_BYTES = MIB, 64 * MIB  # room left after a copy: 1% of the disk
STEP_PAGES = 1024  # pages a stoppable copy copies between two looks at its stop event
CHECK_STEPS = 10_000  # SQLite steps its check runs between two looks


class BackupStopped(CodelaceError):
    """A copy given up because its `stop` event was set (serve stopping)."""


def backup_database(source_path: str, target_path: str, stop: threading.Event | None = None) -> int:
    """Copy the live database at source_path to target_path; returns the pages copied.
    BackupStopped, and no file written, when `stop` is set before the copy is done. Its
    callers make sure the source is there: the configured database by missing_database (the
    one wording of a database not there), restore's backup file by its own check."""
    if not target_path.strip():
        raise CodelaceError("backup needs a file PATH, got an empty one")
    if target_path.endswith(("/", os.sep)):  # Path() drops the slash: a file by that name
        raise CodelaceError(f"backup needs a file PATH, got a folder: {target_path}")
    target = Path(target_path)
    try:  # a folder this user may not enter: PermissionError on the first look
        _refuse_taken(target, Path(source_path))
    except OSError as exc:
        raise _refused(target, exc) from None
    partial = target.with_name(target.name + ".partial")
    if target.parent.is_symlink() and not target.parent.exists():
        raise CodelaceError(
            f"cannot write the backup to {target}: its folder {target.parent} is a link to "
            f"{os.readlink(target.parent)}, which does not exist (a disk not mounted?)"
        )
    try:
        make_private_dir(target.parent)
        remove_with_side_files(partial)
        _ensure_room(source_path, target)
        create_private_file(partial)  # before SQLite makes it with the umask's mode
        try:
            pages = _copy(source_path, str(partial), stop)
            os.replace(partial, target)
        finally:
            remove_with_side_files(partial)
    except (apsw.NotADBError, apsw.CorruptError):
        raise CodelaceError(f"{source_path} is not a SQLite database, or it is damaged") from None
    except (OSError, apsw.CantOpenError, apsw.ReadOnlyError, apsw.FullError, apsw.IOError) as exc:
        raise _refused(target, exc) from None
    return pages


def _refuse_taken(target: Path, source: Path) -> None:
    """CodelaceError when the backup's name is taken: a file there, the database's own side
    file, or a side file an earlier file of that name left (SQLite would read it in)."""
    if target.exists():
        raise CodelaceError(f"{target} already exists; choose a new file")
    refuse_side_file_of(target, source)
    if leftover := next((side for side in side_files(target) if side.exists()), None):
        raise CodelaceError(
            f"{leftover} is a leftover of an earlier file named {target.name} (SQLite would "
            "read it into the backup): move it away or choose a new file"
        )


def _refused(target: Path, exc: Exception) -> CodelaceError:
    """The line of a backup that could not be written; for a refused permission, whose
    folder it is when another user's (a folder a backup run as root made, 700)."""
    words = _reason(exc)
    if isinstance(exc, PermissionError):
        for folder in (target.parent, *target.parent.parents):
            if not os.path.exists(folder):  # missing, or inside one it may not enter
                continue
            owner = other_owner(folder)
            if owner is not None and not os.access(folder, os.W_OK | os.X_OK):
                words += (
                    f" (its folder {folder} belongs to {owner}: chown it to the user running "
                    "codelace-box, or name another PATH)"
                )
            break
    return CodelaceError(f"cannot write the backup to {target}: {words}")


def _ensure_room(source_path: str, target: Path) -> None:
    """CodelaceError unless the target's disk has room for the copy (the source's pages) and
    then 1% of the disk (1 MiB at least, 64 MiB at most) to spare."""
    source = _open_source(source_path)
    try:
        (pages,) = source.execute("PRAGMA page_count").fetchone()  # type: ignore[misc]
        (page_size,) = source.execute("PRAGMA page_size").fetchone()  # type: ignore[misc]
    finally:
        source.close()
    disk = os.statvfs(target.parent)
    if disk.f_blocks == 0:  # a filesystem that tells no sizes (some FUSE mounts): not judged
        return
    free, needed = disk.f_bavail * disk.f_frsize, int(pages) * int(page_size)
    spare = min(SPARE_MAX_BYTES, max(SPARE_MIN_BYTES, disk.f_blocks * disk.f_frsize // 100))
    if free - needed < spare:
        why = "the disk is full" if free < needed else "not enough room on its disk"
        raise CodelaceError(
            f"cannot write the backup to {target}: {why} (the copy needs {_mib(needed)}, "
            f"{_mib(free)} free, {_mib(spare)} to stay free); nothing written"
        )


def _mib(size: int) -> str:
    return f"{size / MIB:.1f} MiB"


def _reason(exc: Exception) -> str:
    """Why a file could not be written, in words (a folder in the way, no permission, ...)."""
    if isinstance(exc, FileExistsError | NotADirectoryError):
        return "a file is in the way of its folder"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    for kind, words in _SQLITE_REASONS:  # the backup step's own message is 'not an error'
        if isinstance(exc, kind):
            return words
    return str(exc)


_SQLITE_REASONS = (
    (apsw.FullError, "the disk is full"),
    (apsw.ReadOnlyError, "the file or its disk is read-only"),
    (apsw.CantOpenError, "the file cannot be opened"),
    (
        apsw.IOError,
        "a read or write failed with an I/O error (a failing disk, a file size limit "
        "or a disk quota)",
    ),
)


def _open_source(path: str) -> apsw.Connection:
    """The source, read-only. SQLite cannot open a WAL-mode file so where it may not create
    its -shm (read-only media, a folder the user may only read: a copy of the database made by
    hand); with no WAL file beside it nothing writes it, and it is read as immutable."""
    source = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
    source.set_busy_timeout(BUSY_TIMEOUT_MS)  # before its first read: a write may be under way
    try:
        source.execute("PRAGMA schema_version").fetchall()
    except apsw.ReadOnlyError as exc:  # a hot journal, which only a writer rolls back
        source.close()
        if exc.extendedresult != apsw.SQLITE_READONLY_ROLLBACK:  # type: ignore[attr-defined]
            raise
        raise CodelaceError(
            f"cannot read {path}: the {Path(path).name}-journal beside it holds a write that "
            "never finished (copied while a program wrote it?), which a reader cannot roll "
            "back: open it once with sqlite3 (that rolls it back), or use another copy"
        ) from None
    except apsw.CantOpenError:
        source.close()
        if not Path(path).is_file():  # moved away since its caller looked
            raise CodelaceError(f"cannot read {path}: it is no longer there") from None
        if Path(path + "-wal").exists():
            raise CodelaceError(
                f"cannot read {path}: SQLite cannot open it where it may not write, with its "
                "WAL file beside it (copy both to a folder you can write)"
            ) from None
        uri = "file:" + quote(str(Path(path).resolve())) + "?immutable=1"
        source = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    source.set_busy_timeout(BUSY_TIMEOUT_MS)
    return source


def _copy(source_path: str, partial_path: str, stop: threading.Event | None) -> int:
    source = _open_source(source_path)
    destination = apsw.Connection(partial_path)
    try:
        # one read transaction: every step reads the same snapshot, whatever others write
        source.execute("BEGIN; SELECT count(*) FROM sqlite_schema").fetchall()
        with destination.backup("main", source, "main") as job:
            while not job.step(-1 if stop is None else STEP_PAGES):
                if stop is not None and stop.is_set():
                    raise BackupStopped("the backup was stopped before it was done")
            pages = job.page_count
        if stop is not None:  # the check of a big copy takes longest: stopped by the handler
            destination.set_progress_handler(stop.is_set, CHECK_STEPS)
        check = destination.execute("PRAGMA integrity_check").fetchall()
        if check != [("ok",)]:
            raise CodelaceError(f"the copy failed its integrity check: {check[:3]}")
        destination.execute("PRAGMA journal_mode=DELETE").fetchall()
    except apsw.InterruptError:
        raise BackupStopped("the backup was stopped before it was done") from None
    finally:
        destination.close()
        source.close()
    return int(pages)


SIDE_FILES = ("-wal", "-shm", "-journal")  # SQLite's files beside a database, named after it


def side_files(path: Path) -> list[Path]:
    """The -wal, -shm and -journal names of a database file."""
    return [path.with_name(path.name + suffix) for suffix in SIDE_FILES]


def refuse_side_file_of(target: Path, database: Path) -> None:
    """A copy is never written under a name of the database's own -wal/-shm/-journal: SQLite
    uses that file as the database's (and deletes a -wal it cannot read at its next open).
    A symlinked database's are beside the file it points to, where SQLite keeps them."""
    sides = [*side_files(database), *side_files(database.resolve())]
    if target.resolve() in {side.resolve() for side in sides}:
        raise CodelaceError(
            f"{target} is a name of the database's own SQLite files; choose another name"
        )


def remove_with_side_files(path: Path) -> None:
    """Delete a scratch database of ours and whatever SQLite left beside it: a rollback
    journal left there by a crash is hot, and SQLite would play it back into the next file of
    that name at its first open."""
    for name in (path, *side_files(path)):
        name.unlink(missing_ok=True)


def set_aside(db_path: str, stamp: str) -> Path | None:
    """Move a database file (no process may have it open) out of the way as
    `<name>.replaced-<stamp>` (`-2`, `-3`, ... when that name is taken), its WAL checkpointed
    into it first so the file is whole (a damaged file, the one a restore often replaces, as
    it is, its WAL beside it); None when there is no file."""
    path = Path(db_path)
    if not path.is_file():
        return None
    connection = apsw.Connection(str(path))
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except (apsw.NotADBError, apsw.CorruptError):
        pass  # kept for a look as it is: nothing in it to make whole
    finally:
        connection.close()
    kept = _free_name(path, stamp)
    os.replace(path, kept)
    set_aside_side_files(path, kept)
    return kept


def set_aside_side_files(path: Path, kept: Path) -> list[Path]:
    """Move the -wal, -shm and -journal still beside `path` (normally gone) to `kept`'s
    names: a file put in its place must not get them (SQLite would read another database's
    WAL as its own, and play a hot journal back into it). The paths they went to."""
    moved = []
    for suffix in SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.replace(side, kept.with_name(kept.name + suffix))
            moved.append(kept.with_name(kept.name + suffix))
    return moved


def leftover_side_files(db_path: str, stamp: str) -> list[Path]:
    """Side files with no database beside them (the file was moved away by hand after a
    crash, its journal left behind), moved aside as a replaced database's would be."""
    path = Path(db_path)
    if path.exists():
        return []
    return set_aside_side_files(path, _free_name(path, stamp))


def _free_name(path: Path, stamp: str) -> Path:
    """`<name>.replaced-<stamp>`, or `-2`, `-3`, ... when it (or a side file of it) exists:
    two restores in one second never write over the first kept file."""
    kept = path.with_name(f"{path.name}.replaced-{stamp}")
    for n in range(2, 10_000):
        if not any(kept.with_name(kept.name + s).exists() for s in ("", *SIDE_FILES)):
            break
        kept = path.with_name(f"{path.name}.replaced-{stamp}-{n}")
    return kept
