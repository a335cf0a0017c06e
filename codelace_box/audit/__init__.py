"""The audit log of admin actions: who changed what, when, before and after, hash-chained.

Every admin change, from the CLI (client "cli") or the dashboard (client "admin"), writes one
entry in the SAME transaction as the change (and so does a Stripe refund or dispute the box did
not apply in full, client "stripe": billing/refused.py), so a change without its entry (or the
reverse) cannot be committed. Adding a command? Wrap its feature call in one `admin_change`:

    with admin_change("cli", "providers remove", name, lambda: states.provider(name)):
        remove_provider(name)

`admin_change` opens the write transaction (the feature function's own becomes a savepoint
inside it), reads `state()` as the before, runs the body, reads `state()` again as the after and
writes the entry. When the target or the after is only known inside (a new key's id), set
`change.target` / `change.after` in the body. A path that already holds a transaction calls
`record(tx, ...)` itself. A body that raises writes nothing (the whole transaction rolls back).

Secrets never reach the log: states hold hints (`sk-…a1b2`), and `mask_state` masks any value
under a secret-looking name. Each entry stores `prev_hash` (the entry before's hash) and
`hash` = sha256(prev_hash + the entry's canonical JSON); `verify_chain` (audit/chain.py, run
by `doctor`) recomputes them, and compares the log with its head (how many entries were
written and the newest one's hash, kept beside it in the same transaction): the chain alone
does not show its newest entries removed. Ids may skip (PostgreSQL sequences do): only the
chain proves anything.
An entry's shape, masking and hash are audit/entry.py's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import Any

from codelace_box.audit.entry import (
    Change,
    Entry,
    State,
    _body,
    _entry,
    canonical,
    entry_hash,
    mask_state,
    os_user,
)
from codelace_box.db.core import Tx, close_database, open_database, utcnow, write_transaction
from codelace_box.db.hotpath import one_writer_with_requests
from codelace_box.db.observability import (
    AUDIT_PAGE,
    advance_audit_head,
    audit_pages,
    audit_rows,
    insert_audit_entry,
    last_hash,
)

# Schema versions: the log exists from AUDIT_LOG (m0010), its head from AUDIT_HEAD (m0017, which
# counts the entries there are); entries are chained as now in both.
AUDIT_LOG = 10
AUDIT_HEAD = 17
log = logging.getLogger("codelace_box.audit")
CLIENTS = ("cli", "admin", "stripe")  # stripe: a refund or dispute not applied in full


def record(
    tx: Tx,
    client: str,
    command: str,
    target: str,
    before: State,
    after: State,
    *,
    head: bool = True,
) -> str:
    """Write one entry inside the caller's open write transaction; its hash. `head=False`:
    the log of a schema before its head (m0017 counts the entries there are), as restore
    writes into an older backup."""
    if client not in CLIENTS:
        raise ValueError(f"audit client must be one of {CLIENTS}, got {client!r}")
    change = Change(client, command, target, mask_state(before), mask_state(after))
    created_at = utcnow().isoformat(timespec="microseconds") + "Z"
    user = os_user()
    prev = last_hash(tx)
    digest = entry_hash(prev, _body(created_at, user, change))
    stored = [None if s is None else canonical(s) for s in (change.before, change.after)]
    insert_audit_entry(
        tx, (created_at, user, client, command, change.target, *stored, prev, digest)
    )
    if head:
        advance_audit_head(tx, digest)
    return digest


@contextmanager
def admin_change(
    client: str,
    command: str,
    target: str,
    state: Callable[[], State] | None = None,
    *,
    head: bool = True,
) -> Iterator[Change]:
    """Run an admin change and its audit entry in one write transaction (see the module doc).
    On PostgreSQL the before is read once no other admin change, admission or settlement of
    any box runs (their lock, taken first): read without it, two changes of one account at
    once both recorded the balance neither had left (10 -> 15 and 10 -> 20 for two credits
    of 5)."""
    with write_transaction() as tx:
        one_writer_with_requests(tx)  # SQLite: BEGIN IMMEDIATE already is
        change = Change(client, command, target, before=state() if state else None)
        yield change
        if not change.after_set and state is not None:
            change.after = state()
        record(tx, client, command, change.target, change.before, change.after, head=head)


def list_entries(since: datetime | None = None, limit: int | None = None) -> list[Entry]:
    """Entries from `since` on (all when None), oldest first; `limit`: only the newest ones."""
    if limit is None:
        return list(entries(since))
    return [_entry(row) for row in audit_rows(since_text(since), limit)]


def entries(since: datetime | None = None, page: int | None = None) -> Iterator[Entry]:
    """Entries from `since` on (all when None), oldest first, read a page at a time."""
    for chunk in entry_pages(since, page=page):
        yield from chunk


def entry_pages(
    since: datetime | None = None, upto: int | None = None, page: int | None = None
) -> Iterator[list[Entry]]:
    """Entries from `since` on (all when None) with ids up to `upto` (None: to the newest),
    oldest first, `page` (AUDIT_PAGE by default) at a time: however long the log, one page in
    memory (db/observability.py audit_pages)."""
    for rows in audit_pages(since_text(since), upto, page or AUDIT_PAGE):
        yield [_entry(row) for row in rows]


def since_text(since: datetime | None) -> str:
    """A moment as entries store their time (the text `created_at >= ?` compares)."""
    return since.isoformat(timespec="microseconds") + "Z" if since else ""


def migrate_recorded(db: Any, client: str = "cli") -> list[int]:
    """`migrate(db)`; an upgrade of a database that had a schema (not a new one's creation) is
    an admin action too: entry `migrate`, target `schema`, from the version it had to the
    version it has; one stopped midway (Ctrl-C, a full disk) too, for the migrations it
    applied (each its own transaction: they stay). Returns the versions applied."""
    from codelace_box.db import migrate as schema

    had, before = schema.current_version(db), schema.applied_versions(db)
    try:
        applied = schema.migrate(db)
    except KeyboardInterrupt:  # the migration it was in rolled back; those before it stay
        raise schema.interrupted(had, _record_stopped(db, client, had, before)) from None
    except Exception as exc:  # a full disk, say: as with Ctrl-C, those before it stay
        if midway := schema.stopped_midway(had, _record_stopped(db, client, had, before), exc):
            raise midway from None
        raise
    if applied and had:
        _warn_if_still_served()
        _record_migrate(client, had, schema.current_version(db), applied)
    return applied


def _record_migrate(client: str, had: int, now: int, applied: list[int]) -> None:
    """The `migrate` entry, in the log the schema has now (none before the log's migration)."""
    if now < AUDIT_LOG:
        return
    with write_transaction() as tx:
        after = {"schema_version": now, "applied": applied}
        record(tx, client, "migrate", "schema", {"schema_version": had}, after,
               head=now >= AUDIT_HEAD)  # fmt: skip


def _record_stopped(db: Any, client: str, had: int, before: set[int]) -> int:
    """The entry of a migrate stopped midway, if it can be written (a full disk may refuse it
    too; before m0010 there is no log); the schema version now."""
    from codelace_box.db.migrate import applied_versions

    now = _version_now(db, had)
    with suppress(Exception):
        applied = sorted(applied_versions(db) - before)
        if applied and had:
            _record_migrate(client, had, now, applied)
    return now


def _version_now(db: Any, had: int) -> int:
    """The schema version after a failed migrate (`had` when it cannot be read either)."""
    from codelace_box.db.migrate import current_version

    try:
        return current_version(db)
    except Exception:
        return had


def _warn_if_still_served() -> None:
    """After a migration on PostgreSQL: the other boxes still serving (README, Upgrading many
    boxes: one of a release since 2026-12-04 answers 503 `database_newer` before calling the
    provider until restarted; one of an earlier release is not told, and fails after it)."""
    from codelace_box.db.owners import serving_processes

    serving = serving_processes()
    if serving:
        boxes = "1 box process served" if serving == 1 else f"{serving} box processes served"
        log.warning(
            "migrated while %s on this database: restart every box on this release now (until "
            "then, a box of a release since 2026-12-04 answers its inference requests 503 "
            "database_newer, an older one fails them after calling the provider)",
            boxes,
        )


def record_backup(target: str, path: str, pages: int) -> None:
    """A backup taken from the command line, as an entry naming the copy (a copy of every
    account and payment), in the log of the schema the database has (an older release's
    too: the README's backup before an upgrade); one from before the log has none."""
    after = {"path": str(Path(path).resolve()), "pages": pages}
    _record_in(target, "backup", str(Path(path).resolve()), None, after)


def copy_recorder(source: str, target: str) -> Callable[[Tx, dict[str, int]], None]:
    """What `db copy` writes in the copy's own transaction, on the copy: an entry naming where
    it came from and how much it holds (`source` and `target` as shown: no password)."""

    def recorded(tx: Tx, counts: dict[str, int]) -> None:
        after = {"from": source, "rows": sum(counts.values()), "tables": len(counts)}
        record(tx, "cli", "db copy", target, None, after)

    return recorded


def record_init(target: str, path: str, existed: bool, kept_from: str | None) -> None:
    """`init` wrote the config file `path` for the database `target` (one that exists: a first
    `init` has no log to write in); the entry says whether it replaced a file and whether the
    server secret was kept (never the secret)."""
    secret = f"kept from {kept_from}" if kept_from else "new"
    before = {"config": path, "existed": existed}
    _record_in(target, "init", path, before, {"config": path, "server_secret": secret})


def _record_in(target: str, command: str, name: str, before: State, after: State) -> None:
    """An entry in the database `target`, opened for it, in the log its schema has (an older
    release's, left at its schema: from AUDIT_LOG, with its head from AUDIT_HEAD); one of a
    newer release's, or from before the log, gets none."""
    from codelace_box.db.migrate import LATEST_VERSION, current_version

    db = open_database(target)
    try:
        version = current_version(db)
        if AUDIT_LOG <= version <= LATEST_VERSION:
            with write_transaction() as tx:
                record(tx, "cli", command, name, before, after, head=version >= AUDIT_HEAD)
    finally:
        close_database()
