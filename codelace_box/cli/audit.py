"""The `audit` command: the admin actions of the audit log, newest last."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from codelace_box.cli.limit_options import MOMENT_OPTIONS, named_as_options
from codelace_box.cli.support import CliState, json_option, pass_state, plain
from codelace_box.cli.text import display_width, pad
from codelace_box.reports.moments import parse_moment

if TYPE_CHECKING:
    from peewee import Database

COLUMNS = ["id", "at", "os_user", "client", "command", "target", "changes"]
# what the table's widths are read from (all its columns but the last, whose width pads nothing)
_WIDTH_COLUMNS = "id, created_at, os_user, client, command, target"


def entry_view(entry: Any) -> dict[str, Any]:
    """An audit entry as the CLI shows it."""
    return {
        "id": entry.id,
        "at": entry.created_at,
        "os_user": entry.os_user,
        "client": entry.client,
        "command": entry.command,
        "target": entry.target,
        "before": entry.before,
        "after": entry.after,
        "hash": entry.hash,
    }


def _open_with_an_audit_log(config: Any) -> Database:
    """Open the database as it is (never made, nor migrated: `audit` also reads a replaced
    file); one from before the audit log (schema version 10) is said in one line."""
    from codelace_box.db.migrate import current_version
    from codelace_box.db.models import AuditEntry
    from codelace_box.doctor import open_existing_database
    from codelace_box.errors import CodelaceError

    database = config.database
    db = open_existing_database(config)
    if not db.table_exists(AuditEntry._meta.table_name):
        where = "the database" if database.is_postgres else database.path
        version = current_version(db)
        what = "has no schema yet"
        if version:
            what = f"is at schema version {version}, from before the audit log"
        raise CodelaceError(f"{where} {what}: run `codelace-box migrate` (or start serve) first")
    return db


def _changes(view: dict[str, Any]) -> str:
    """What changed, as `field: old -> new`, a provider's keys by id and hint
    (audit/changes.py); "created" or "removed" when one side is missing."""
    before, after = view["before"] or {}, view["after"] or {}
    if view["client"] == "stripe" and isinstance(after.get("refused"), str):
        return f"not applied: {after['refused']}"  # billing/refused.py: no before, an event
    if not view["before"] or not view["after"]:
        return "created" if view["after"] else "removed"
    from codelace_box.audit.changes import field_changes

    return "; ".join(field_changes(before, after, str)) or "-"


def json_text(since: datetime | None, page: int | None = None) -> Iterator[str]:
    """`audit --json`'s output, one JSON array of the entries (indented as `emit` writes any
    list), a page of entries at a time: written as the log is read, never all in memory."""
    from codelace_box.audit import entry_pages

    opening = "[\n"
    for entries in entry_pages(since, page=page):
        items = (json.dumps(entry_view(e), indent=2, default=str) for e in entries)
        yield opening + ",\n".join("  " + item.replace("\n", "\n  ") for item in items)
        opening = ",\n"
    yield "[]\n" if opening == "[\n" else "\n]\n"


def table_text(since: datetime | None, page: int | None = None) -> Iterator[str]:
    """`audit`'s table (as support.table aligns it), a page of entries at a time: one read of
    the short columns for their widths, then the entries up to the newest id that read saw."""
    from codelace_box.audit import entry_pages

    found = _widths(since, page)
    if found is None:
        yield "(none)\n"
        return
    widths, upto = found
    yield "  ".join(c.upper().ljust(w) for c, w in zip(COLUMNS, widths, strict=True)).rstrip()
    yield "\n"
    for entries in entry_pages(since, upto, page):
        rows = [entry_view(e) for e in entries]
        cells = ([plain(row[c]) for c in COLUMNS[:-1]] + [_changes(row)] for row in rows)
        lines = ("  ".join(map(pad, row, widths)).rstrip() for row in cells)
        yield "".join(line + "\n" for line in lines)


def _widths(since: datetime | None, page: int | None) -> tuple[list[int], int] | None:
    """The columns' widths (the last one's 0: it is not padded) and the newest id listed;
    None when there is no entry to list."""
    from codelace_box.audit import since_text
    from codelace_box.db.observability import AUDIT_PAGE, audit_pages

    widths, upto = [len(c) for c in COLUMNS[:-1]], None
    for rows in audit_pages(since_text(since), None, page or AUDIT_PAGE, _WIDTH_COLUMNS):
        for row in rows:
            widths = [max(w, display_width(str(v))) for w, v in zip(widths, row, strict=True)]
        upto = int(rows[-1][0])
    return None if upto is None else ([*widths, 0], upto)


@click.command()
@click.option(
    "--since", default=None, help="From this moment on (included): 24h, 7d or an ISO date (UTC)."
)
@json_option
@pass_state
def audit(state: CliState, since: str | None, as_json: bool) -> None:
    """List the admin actions of the audit log (who changed what, when), oldest first."""
    from codelace_box.db.snapshot import pages_at_one_instant

    with named_as_options(MOMENT_OPTIONS):
        start = parse_moment(since) if since is not None else None
    state.hold_database()
    db = _open_with_an_audit_log(state.config())
    with pages_at_one_instant(db):  # the log is read a page at a time, written as it is read
        for text in json_text(start) if as_json else table_text(start):
            click.echo(text, nl=False)
