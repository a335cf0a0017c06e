"""Scheduled online backups: `codelace-<UTC time>.db` in `backup.dir` every `backup.every_hours`,
the same consistent copy as `codelace-box backup`, the oldest beyond `backup.keep` removed, and
any copy of its own a stopped serve left unfinished (`codelace-<UTC time>.db.partial`).
The folder belongs to one database: OWNER_FILE in it names the database whose backups it
holds (written with its first backup), and another database's box takes, counts and removes
nothing there (two boxes on one machine given one backup.dir took each other's backups for
their own, and rotated them away)."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from datetime import datetime, timedelta
from pathlib import Path

from codelace_box.config import Config
from codelace_box.db.backup import backup_database
from codelace_box.db.sqlite_file import missing_database
from codelace_box.errors import CodelaceError, NotFound
from codelace_box.private_files import create_private_file, replace_private_file

log = logging.getLogger("codelace_box.upkeep")

_NAME = re.compile(r"^codelace-(\d{8}T\d{6}Z)\.db$")
ONLY = (  # doctor's words when it found none: where it looked is not where `backup` writes
    "doctor looks there for their codelace-<UTC time>.db files only, not for copies "
    "`codelace-box backup` wrote elsewhere"
)
_UNFINISHED = re.compile(r"^codelace-\d{8}T\d{6}Z\.db\.partial$")
_STAMP = "%Y%m%dT%H%M%SZ"
OWNER_FILE = ".codelace-backups-of"  # the database's absolute path, one line
# A running serve opened its database: the file gone since (deleted, moved, emptied) is not a
# new box to start, and the data since the last backup is in the file serve still holds open.
GONE_HINT = (
    "the database file went from under the running serve (deleted, moved or emptied): put it "
    "back before stopping serve (serve still writes the file it opened), or stop serve and "
    "`codelace-box restore` the newest backup"
)


def check_owner(folder: str | Path, db_path: str) -> None:
    """CodelaceError when the folder holds the scheduled backups of another database."""
    marker = Path(folder) / OWNER_FILE
    try:
        owner = marker.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc  # a folder it may not read, mostly
        raise CodelaceError(f"cannot read {folder}: {reason}") from None
    if owner and owner != _absolute(db_path):
        raise CodelaceError(
            f"{folder} holds the scheduled backups of another database ({owner}): give each "
            f"box a backup.dir of its own (if this database was moved from there, delete "
            f"{marker})"
        )


def _claim(folder: Path, db_path: str) -> None:
    """Name this database in the folder (its first backup there)."""
    marker = folder / OWNER_FILE
    if create_private_file(marker):  # 600, as the backups beside it
        marker.write_text(_absolute(db_path) + "\n", encoding="utf-8")


def _absolute(db_path: str) -> str:
    return str(Path(db_path).expanduser().resolve())


def scheduled_backups(folder: str | Path) -> list[tuple[datetime, Path]]:
    """The scheduled backups in a folder (by their names; other files are not ours), oldest
    first; CodelaceError naming the folder when it cannot be read (not the service user's)."""
    found = []
    directory = Path(folder)
    try:
        if not directory.is_dir():
            return []
        for path in directory.iterdir():
            taken = _taken_at(path.name)
            if taken is not None and path.is_file():
                found.append((taken, path))
    except OSError as exc:
        raise CodelaceError(f"cannot read {folder}: {exc.strerror or exc}") from None
    return sorted(found)


def _taken_at(name: str) -> datetime | None:
    """When the scheduled backup of this name was taken; None for any other name (digits that
    are no date too: another script's file)."""
    match = _NAME.match(name)
    try:
        return datetime.strptime(match.group(1), _STAMP) if match else None
    except ValueError:
        return None


def taken_by(folder: str | Path, now: datetime) -> list[tuple[datetime, Path]]:
    """The scheduled backups named no later than `now`, oldest first. One named later was
    taken while the clock ran ahead: counted as the newest it would stop the backups (and
    keep doctor quiet) until the clock reached its name, and crowd the real ones out."""
    return [found for found in scheduled_backups(folder) if found[0] <= now]


def newest_backup(folder: str | Path, now: datetime) -> tuple[datetime, Path] | None:
    """When the newest scheduled backup (named no later than `now`) was taken, and its file."""
    found = taken_by(folder, now)
    return found[-1] if found else None


def backup_due(folder: str | Path, every_hours: int, now: datetime) -> bool:
    """True when scheduled backups are on and the newest is `every_hours` old (or none)."""
    if every_hours <= 0:
        return False
    newest = newest_backup(folder, now)
    return newest is None or now - newest[0] >= timedelta(hours=every_hours)


def scheduled_backup_if_due(config: Config, now: datetime, stop: threading.Event) -> Path | None:
    """The scheduled backup when one is due, else None; off the event loop, listing the
    folder included (a backup.dir on a hung network mount must not stall the requests);
    given up, nothing left, once `stop` is set. A database not there (or of 0 bytes) is
    refused in the words of every command (missing_database) but for its hint (GONE_HINT:
    serve opened it, so it went from under serve)."""
    b = config.backup
    if b.every_hours <= 0:
        return None
    if why := missing_database(config, GONE_HINT):
        raise NotFound(why, code="database_not_found")
    db_path = config.database.path
    check_owner(b.dir, db_path)  # before the listing: another database's backups are not ours
    if not backup_due(b.dir, b.every_hours, now):
        return None
    taken = take_scheduled_backup(db_path, b.dir, b.keep, now, stop)
    clear_failure(db_path)
    return taken


def take_scheduled_backup(
    db_path: str, folder: str | Path, keep: int, now: datetime, stop: threading.Event | None = None
) -> Path:
    """Write a backup named by `now` and remove the oldest beyond `keep` (of those named no
    later than now: one named ahead of the clock is left for the operator); the new file.
    BackupStopped, nothing written or removed, when `stop` is set first (serve stopping)."""
    target = Path(folder) / f"codelace-{now.strftime(_STAMP)}.db"
    check_owner(folder, db_path)
    remove_unfinished(folder)
    backup_database(db_path, str(target), stop)
    _claim(target.parent, db_path)
    for _, old in taken_by(folder, now)[:-keep]:
        _remove_old_backup(old)
    return target


def _remove_old_backup(old: Path) -> None:
    """Remove a backup beyond `backup.keep`; one that cannot be (a file made immutable, the
    folder's permissions changed) is a warning: the new backup was written all the same."""
    try:
        old.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("the old backup %s is beyond backup.keep but could not be removed: %s",
                    old, exc.strerror or exc)  # fmt: skip


def remove_unfinished(folder: str | Path) -> None:
    """Remove the copies a serve stopped while writing them left (killed mid-backup: the
    copy's own cleanup never ran); only one serve of a data folder takes its backups."""
    directory = Path(folder)
    if directory.is_dir():
        for path in directory.iterdir():
            if _UNFINISHED.match(path.name) and path.is_file():
                path.unlink(missing_ok=True)


def describe_age(taken: datetime, now: datetime) -> str:
    """'3 h 12 min' and the like."""
    minutes = max(0, int((now - taken).total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    return " ".join([*parts, f"{hours} h", f"{mins} min"])


def failure_file(db_path: str) -> Path:
    """Beside the database (`codelace.db.backup-failed`): when the last scheduled backup
    failed, and why; removed by the next that works (doctor reads it: serve's log and alert
    were the only word of it)."""
    path = Path(db_path).expanduser().resolve()
    return path.with_name(f"{path.name}.backup-failed")


def record_failure(db_path: str, now: datetime, reason: str) -> None:
    """Keep the failure for doctor; a data folder that takes no file (its disk full) keeps
    nothing: doctor's OVERDUE says it later, the log and the alert said it already."""
    try:  # whole or not at all: doctor may read it while a retry writes it again
        line = f"{now.strftime(_STAMP)} {reason.splitlines()[0]}\n"
        replace_private_file(failure_file(db_path), line)
    except (OSError, IndexError):
        return


def clear_failure(db_path: str) -> None:
    """A scheduled backup worked: its failure is over."""
    with contextlib.suppress(OSError):
        failure_file(db_path).unlink(missing_ok=True)


def last_failure(db_path: str) -> tuple[datetime, str] | None:
    """When the last scheduled backup failed and why, when it did (None: it worked, or none
    was tried)."""
    try:
        stamp, _, reason = failure_file(db_path).read_text(encoding="utf-8").partition(" ")
        return datetime.strptime(stamp, _STAMP), reason.strip()
    except (OSError, UnicodeError, ValueError):
        return None


def backup_status(
    folder: str | Path, every_hours: int, now: datetime, db_path: str, since: datetime | None
) -> tuple[str, bool]:
    """One line for doctor, and whether it is a failure (only while backups are on): the last
    scheduled backup failed (and none worked since), the folder cannot be used, or the newest
    (none: the database, made at `since`) is more than two intervals old."""
    schedule = f"every {every_hours} h" if every_hours else "off (backup.every_hours = 0)"
    try:
        check_owner(folder, db_path)
        newest = newest_backup(folder, now)
        ahead = len(scheduled_backups(folder)) - len(taken_by(folder, now))
    except CodelaceError as exc:
        newest, ahead, trouble = None, 0, exc.message
    else:
        trouble = ""
    failed = last_failure(db_path) if every_hours else None
    if failed and (newest is None or newest[0] < failed[0]):
        when = failed[0].strftime("%Y-%m-%d %H:%M:%S UTC")
        said = f"the last scheduled backup failed at {when}: {failed[1]}"
        return f"backups: {said} (scheduled backups: {schedule})", True
    if trouble:
        return f"backups: {trouble} (scheduled backups: {schedule})", bool(every_hours)
    future = f" - {ahead} named after now (was the clock ahead?)" if ahead else ""
    taken = newest[0] if newest else since
    late = bool(every_hours and taken and now - taken > timedelta(hours=2 * every_hours))
    overdue = " - OVERDUE: is serve running?" if late else ""
    if newest is None:  # (a copy `backup PATH` wrote, as before an upgrade, is not seen)
        return (
            f"backups: no scheduled backup in {folder} (scheduled backups: {schedule}; {ONLY})"
            f"{overdue}{future}"
        ), late
    return (
        f"backups: newest {newest[1].name}, {describe_age(newest[0], now)} old "
        f"(scheduled backups: {schedule}){overdue}{future}"
    ), late
