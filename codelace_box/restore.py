"""`codelace-box restore BACKUP`: put a backup in place of the database, safely.

Refused while a `serve` or an `admin` has the database open (db.openlock). The backup is
copied beside the database, and the copy checked as `doctor` checks (integrity, schema version,
every balance against its ledger, provider keys readable; a backup from an older version only
for integrity: serve migrates it). Only then is the current file set aside, kept as
`<name>.replaced-<UTC time>` with any -wal, -shm or -journal still beside it (also when the
database itself is gone: a hot journal left beside the restored file would be played back
into it), and the copy renamed into place. The copy's holds are released first: they
belong to no running box (an older schema's are marked owner-less, for serve's start). The
restore itself is the last entry of the restored audit log (who, which backup, how long the
replaced log was), also for a backup of an older schema that has the log (the rollback's,
from schema 10 on; before 17 without the head, which migration 17 makes from the entries),
whose schema stays as it was. A failed scheduled backup's marker (`<name>.backup-failed`)
was the replaced database's: it goes with it (doctor counts overdue from the restore).
"""

from __future__ import annotations

import os
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from codelace_box.audit import AUDIT_HEAD, AUDIT_LOG, admin_change
from codelace_box.config import Config, existing_secret_key
from codelace_box.crypto import decrypt_secret
from codelace_box.db.backup import (
    backup_database,
    leftover_side_files,
    remove_with_side_files,
    set_aside,
    side_files,
)
from codelace_box.db.core import (
    close_database,
    open_database,
    query_all,
    quick_check,
    utcnow,
    write_transaction,
)
from codelace_box.db.migrate import LATEST_VERSION, current_version
from codelace_box.db.openlock import lock_path, nobody_else
from codelace_box.db.sqlite_file import read_only_rows, refuse_not_a_file
from codelace_box.doctor import check_database
from codelace_box.errors import CodelaceError, ConfigError, NotFound
from codelace_box.gateway.holds import release_every_hold
from codelace_box.private_files import other_owner
from codelace_box.upkeep.backups import clear_failure

# The restore of a backup is recorded in the backup's own audit log, its schema left as it is
# (the README's rollback restores the backup taken before an upgrade, then starts the old
# binary): from AUDIT_LOG there is a log; from AUDIT_HEAD with its head, which an older one
# gets from its entries when migrated.
HOLD_OWNERS = 2  # m0002_hold_owner: from here a hold names the process that took it


@dataclass(frozen=True)
class Restored:
    """What a restore did: the backup's schema version, where the replaced file went, and
    where side files found with no database beside them went (a `-journal` left by a crash)."""

    version: int
    replaced: Path | None
    leftovers: tuple[Path, ...] = ()


def restore_database(config: Config, backup: str) -> Restored:
    """Replace the database with a checked copy of `backup`, keeping the replaced file."""
    if config.database.is_postgres:
        raise CodelaceError(
            "database.url is PostgreSQL: restore a pg_dump with pg_restore (this command "
            "restores SQLite backup files)"
        )
    target = config.database.path
    if target == ":memory:":
        raise CodelaceError("database.path is :memory:; there is no file to restore into")
    refuse_not_a_file(target)  # before the copy and its check: a folder stays where it is
    if not _backup_there(Path(backup)):
        raise NotFound(f"no backup at {backup}", code="backup_not_found")
    if Path(backup).resolve() == Path(target).resolve():
        raise CodelaceError(f"{backup} is the database itself; name a backup file")
    # a database path that is a symbolic link (the database kept on another disk) is written
    # through: the file it names is replaced there, the link stays (as `init` writes a config)
    real = os.path.realpath(target)
    staging = Path(real).with_name(Path(real).name + ".restoring")
    _refuse_scratch_name(backup, staging)
    with nobody_else(target):  # the lock serve and admin hold, beside the configured path
        remove_with_side_files(staging)  # a killed restore's, its hot journal too
        try:
            backup_database(backup, str(staging))
            version = _check(str(staging), existing_secret_key(config))
            _settle_copy(str(staging), target, backup, version)
            _keep_owner(staging, Path(real), target)
            stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
            replaced = set_aside(real, stamp)
            leftovers = tuple(leftover_side_files(real, stamp))
            staging.replace(real)
            clear_failure(real)  # the replaced database's failed backup, not this one's
        finally:
            remove_with_side_files(staging)
    return Restored(version, replaced, leftovers)


def _keep_owner(copy: Path, real: Path, target: str) -> None:
    """Give the checked copy the owner of the file it replaces (else of the database's
    folder) when root restores, and the lock file beside the database too when it is root's
    (this restore made it): `sudo codelace-box restore` on a box whose service runs as its own
    user left them root's, and the service could not open them."""
    if os.geteuid() != 0:
        return  # the copy is this user's, as the file it replaces must be to be opened
    try:
        owner = real.stat() if real.is_file() else real.parent.stat()
    except OSError:
        return
    if (owner.st_uid, owner.st_gid) == (0, 0):
        return
    with suppress(OSError):  # (root may not give files away: NFS's root_squash; as before)
        os.chown(copy, owner.st_uid, owner.st_gid)
    lock = lock_path(target)
    with suppress(OSError):
        if lock.stat().st_uid == 0:
            os.chown(lock, owner.st_uid, owner.st_gid)


def _refuse_scratch_name(backup: str, staging: Path) -> None:
    """CodelaceError when the backup is at a name of the restore's own copy (`.restoring`,
    its `.partial`, their side files): removed as a killed restore's leftover before the copy,
    the backup would be gone (a whole one a killed restore left there, say)."""
    partial = staging.with_name(staging.name + ".partial")
    scratch = {name.resolve() for path in (staging, partial) for name in (path, *side_files(path))}
    if Path(backup).resolve() in scratch:
        raise CodelaceError(
            f"{backup} has the name restore gives its own copy (and removes first): move it "
            "to another name, then restore that"
        )


def _settle_copy(staging: str, target: str, backup: str, version: int) -> None:
    """Make the checked copy ready to take the database's place: its holds freed (requests in
    flight when the backup was taken, in a box that is gone; their pids may live again as
    other processes, which serve's start would take for that box), and the restore as an
    admin action in its own audit log (from AUDIT_LOG: older ones have no log to write it
    into): what was replaced, by what."""
    before = {"database": target, **_audit_head_of(target)}
    open_database(staging)
    try:
        released = _free_holds(version)
        if version < AUDIT_LOG:
            return
        after: dict[str, object] = {
            "backup": str(Path(backup).resolve()),
            "schema_version": version,
        }
        if released:
            after["holds_released"] = released
        with admin_change("cli", "restore", target, head=version >= AUDIT_HEAD) as change:
            change.before = before
            change.set_after(after)
    finally:
        close_database()


def _free_holds(version: int) -> int:
    """Release the open copy's holds (this version's schema), or, in an older version's, mark
    them as owned by no process, which serve's start releases after migrating; how many were
    released here."""
    if version == LATEST_VERSION:
        return release_every_hold()
    if version >= HOLD_OWNERS:
        with write_transaction() as tx:
            tx.execute("UPDATE hold SET owner = ''")
    return 0  # before HOLD_OWNERS every hold is owner-less once migrated


def _audit_head_of(path: str) -> dict[str, object]:
    """How many audit entries the database being replaced holds and its newest one's hash
    (None for either when the file, or its log, cannot be read)."""
    rows = read_only_rows(path, "SELECT entries, hash FROM audit_head WHERE id = 1")
    entries, digest = rows[0] if rows else (None, None)
    return {"audit_entries": entries, "audit_hash": digest}


def _check(path: str, secret_key: str | None) -> int:
    """The copy's schema version; CodelaceError naming the first problem if it has any."""
    db = open_database(path)
    try:
        version = current_version(db)
        if version < LATEST_VERSION:  # an older version's backup: serve migrates it
            problems = [f"database integrity: {line}" for line in quick_check(db) if line != "ok"]
        else:
            problems = check_database(db, secret_key)[1]
        sound = not any(line.startswith("database integrity: ") for line in problems)
        # keys a restore would leave unusable: said first, and how; a newer schema's tables
        # are not read (it cannot be restored here whatever its secret: that is said)
        if 0 < version <= LATEST_VERSION and sound:
            _refuse_unreadable_keys(secret_key)
    finally:
        close_database()
    if version == 0:
        problems.insert(0, "it holds no codelace-box schema")
    if problems:
        more = f" (and {len(problems) - 1} more; run doctor on it)" if len(problems) > 1 else ""
        raise CodelaceError(f"the backup fails its check, nothing changed: {problems[0]}{more}")
    return version


def _refuse_unreadable_keys(secret_key: str | None) -> None:
    """CodelaceError when provider keys of the backup do not decrypt with this box's server
    secret (a backup of another box, or of this one before its secret changed): restored, its
    providers could not be used, and only doctor would say so. Read as every schema has
    them (migration 1's columns)."""
    rows = query_all(
        'SELECT p."name", k."id", k."key_hint", k."key_encrypted" FROM "provider_key" k '
        'JOIN "provider" p ON p."id" = k."provider_id" ORDER BY k."id"'
    )
    unreadable = [f"provider {name} key {key_id} ({hint})"
                  for name, key_id, hint, token in rows
                  if not _decrypts(secret_key, token)]  # fmt: skip
    if not unreadable:
        return
    more = ", ..." if len(unreadable) > 1 else ""
    which = f"{len(unreadable)}: {unreadable[0]}{more}"
    why = (
        "with this box's server secret: the backup was made under another server.secret_key"
        if secret_key is not None
        else "without a server secret (this box has none)"
    )
    raise CodelaceError(
        f"the backup's provider keys ({which}) cannot be decrypted {why}; nothing changed. Set "
        "the secret of the box it was made on (server.secret_key, or the data directory's "
        "secret_key file), then restore again"
    )


def _decrypts(secret_key: str | None, token: bytes) -> bool:
    if secret_key is None:
        return False
    try:
        decrypt_secret(secret_key, token)
    except ConfigError:
        return False
    return True


def _backup_there(backup: Path) -> bool:
    """Whether the backup file is there; one line when this user may not even look (a
    backups/ folder root made, 700), not a bug's PermissionError."""
    try:
        return backup.is_file()
    except PermissionError as exc:
        whose = ""
        for folder in backup.parents:
            if os.path.exists(folder):  # the first this user may look into: its owner
                if (owner := other_owner(folder)) is not None:
                    whose = f" (its folder {folder} belongs to {owner}: run restore as a user "
                    whose += "that may read it, or copy the backup where this user may)"
                break
        raise CodelaceError(f"cannot read the backup {backup}: {exc.strerror}{whose}") from None
