"""The `audit` command: the admin actions of the audit log, newest last."""

from __future__ import annotations

from typing import Any

import click

from codelace_box.cli.limit_options import MOMENT_OPTIONS, named_as_options
from codelace_box.cli.support import CliState, emit, json_option, pass_state, table
from codelace_box.reports.moments import parse_moment


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


def _open_with_an_audit_log(config: Any) -> None:
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


@click.command()
@click.option(
    "--since", default=None, help="From this moment on (included): 24h, 7d or an ISO date (UTC)."
)
@json_option
@pass_state
def audit(state: CliState, since: str | None, as_json: bool) -> None:
    """List the admin actions of the audit log (who changed what, when), oldest first."""
    from codelace_box.audit import list_entries

    with named_as_options(MOMENT_OPTIONS):
        start = parse_moment(since) if since is not None else None
    state.hold_database()
    _open_with_an_audit_log(state.config())
    rows = [entry_view(e) for e in list_entries(start)]

    def render(items: list[dict[str, Any]]) -> str:
        flat = [r | {"changes": _changes(r)} for r in items]
        return table(flat, ["id", "at", "os_user", "client", "command", "target", "changes"])

    emit(rows, as_json, render)
