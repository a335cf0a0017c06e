"""F6 Audit: who changed what from the CLI or this dashboard (the audit log, newest first),
and the requests refused in the last 24 hours (402, 404, 429) by status and code. The line under
the log shows the highlighted entry in full (at 80 columns its Changes cell holds a few words)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from admin_tui.screens.base import AdminScreen
from admin_tui.screens.formatting import count, right
from admin_tui.service_audit import Entry, RefusalCount, entries, field_changes, refusal_counts
from admin_tui.widgets.live_table import LiveTable, visible


def changes(entry: Entry) -> str:
    """What an entry changed: `field: old -> new` (a provider's keys by id and hint), or that
    its target was created or removed."""
    before, after = entry.before or {}, entry.after or {}
    if entry.client == "stripe" and isinstance(after.get("refused"), str):
        return f"not applied: {after['refused']}"  # a Stripe refund or dispute, not a change
    if entry.before is None:
        return "created" if entry.after is not None else "-"
    if entry.after is None:
        return "removed"
    return "; ".join(field_changes(before, after, _short))


def describe_entry(entry: Entry) -> str:
    """One entry in full: when, who, what, and every field it changed (a Stripe refund or
    dispute not applied: why, and what Stripe moved and the box took back)."""
    head = (
        f"{entry.created_at[:19].replace('T', ' ')} UTC · {entry.os_user} · {entry.client} · "
        f"{entry.command} {entry.target}"
    )
    after = entry.after or {}
    if entry.client == "stripe" and isinstance(after.get("refused"), str):
        rest = [f"{k}: {_short(v)}" for k, v in after.items() if k != "refused"]
        return f"{head}\n{changes(entry)}" + (f" · {' · '.join(rest)}" if rest else "")
    return f"{head}\n{changes(entry)}"


def _short(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


AUDIT_SHOWN = 200


class AuditScreen(AdminScreen):
    """The audit log and the refusal counts."""

    MODE = "audit"
    REFRESH_SECONDS = 5.0
    PALETTE = (("Reload the audit log", "Read the newest entries", "reload_audit"),)

    def compose_body(self) -> ComposeResult:
        yield Static("Refused in the last 24 hours (no usage row is written for these)")
        yield LiveTable("Status", "Code", "Count", flex=("Code",), id="refusals")
        yield Static("Admin changes, newest first (codelace-box audit shows them all)")
        yield LiveTable(
            "When (UTC)", "OS user", "Client", "Command", "Target", "Changes",
            flex=("Target", "Changes"), id="audit", follows_head=True,
        )  # fmt: skip
        with VerticalScroll(id="audit-detail-scroll"):  # a tall entry: Tab, then arrows, End
            yield Static("", id="audit-detail")

    def __init__(self) -> None:
        super().__init__()
        self._entries: dict[str, Entry] = {}
        self._described: str | None = None  # the entry the detail shows (its key)

    def on_mount(self) -> None:  # AdminScreen.on_mount runs too (Textual walks the MRO)
        self.query_one("#audit", LiveTable).focus()

    async def fetch(self) -> tuple[list[Entry], list[RefusalCount]]:
        since = self.services.now() - timedelta(days=1)
        newest = await self.services.run(entries, AUDIT_SHOWN)
        refusals = await self.services.run(refusal_counts, since)
        return newest, refusals

    def show(self, data: Any) -> None:
        entries, refusals = data
        self.query_one("#refusals", LiveTable).replace_rows(
            [
                (f"{r.status}:{r.code}", [str(r.status), r.code, right(count(r.count))])
                for r in refusals
            ]
        )
        self._entries = {str(e.id): e for e in entries}
        self.query_one("#audit", LiveTable).replace_rows(
            [
                (
                    str(e.id),
                    [
                        e.created_at[:19].replace("T", " "),
                        e.os_user,
                        e.client,
                        e.command,
                        e.target,
                        changes(e),
                    ],
                )
                for e in reversed(entries)
            ]
        )

        self._describe_entry()

    @on(DataTable.RowHighlighted, "#audit")
    def _describe_entry(self) -> None:
        """The line under the log: the highlighted entry in full."""
        key = self.query_one("#audit", LiveTable).selected_key()
        entry = self._entries.get(key) if key else None
        self.query_one("#audit-detail", Static).update(
            Text(visible(describe_entry(entry))) if entry else ""
        )
        if key != self._described:  # another entry: from its head, not where the last was read
            self._described = key
            self.query_one("#audit-detail-scroll", VerticalScroll).scroll_home(animate=False)

    def action_reload_audit(self) -> None:
        self.reload()
