"""One account in full: its figures, active keys (their spend against their cap, the models
they may call), ledger, requests and payments, with the actions on it (adjust balance,
disable/enable, request limits, a key's limits, create or revoke a key)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from admin_tui.dialogs.confirm import ConfirmDialog
from admin_tui.dialogs.form import FormDialog, FormField
from admin_tui.screens.base import AdminScreen
from admin_tui.screens.formatting import (
    count,
    dated_moment,
    history_moment,
    moment,
    paid_cell,
    right,
    status_cell,
    usd_exact,
    usd_fine,
)
from admin_tui.screens.user_actions import UserActions, request_limits_text
from admin_tui.services import (
    LIST_LIMIT,
    KeyLimitsForm,
    KeyRow,
    UserDetail,
    UserRow,
    moment_text,
)
from admin_tui.widgets.live_table import LiveTable, Row

SHORT_ID = 8  # characters of a UUID shown in a table: enough for `keys revoke`


def manage_keys_field(value: str) -> FormField:
    """The yes/no field of whether a key may manage the account's keys through the API."""
    return FormField("manage_keys", "May manage keys (no: a key for a tool)", value,
                     choices=("yes", "no"))  # fmt: skip


def limit_fields(key: KeyRow | None) -> list[FormField]:
    """A key's cap, reset, expiry and models, filled with its own (a new key: none)."""
    return [
        FormField("limit_usd", "Spend cap in USD (blank: none)", cap_text(key) if key else "",
                  placeholder="20.00"),
        FormField("limit_reset", "Cap resets (UTC)", (key.limit_reset if key else None) or "never",
                  choices=("never", "daily", "weekly", "monthly")),
        FormField("expires", "Expires (blank: never)", moment_text(key) if key else "",
                  placeholder=f"{a_year_ahead()}T00:00:00Z or 30d"),
        FormField("models", "Allowed models (blank: all)",
                  ", ".join(key.allowed_models or ()) if key else "",
                  placeholder="openai/gpt-5.4, ..."),
    ]  # fmt: skip


# A detail table (by id) that lists only the newest LIST_LIMIT rows says so: which of
# UserDetail.cut it shows, and what the line says after "The newest 200".
CUT_NOTES = {
    "ledger": ("ledger", "entries: the account has more (older ones are not listed here)"),
    "usage": ("requests", "requests: the account has more (the totals above count them all)"),
    "payments": ("payments", "payments: the account has more"),
}


def cut_note(table: str) -> Static:
    """The line above a detail table saying it lists only the newest rows (hidden until so)."""
    return Static("", id=f"{table}-more", classes="cut-note", markup=False)


def a_year_ahead() -> str:
    """Today plus 365 days (UTC) as an ISO date: an expiry example that is never in the past."""
    return (datetime.now(UTC) + timedelta(days=365)).date().isoformat()


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


class UserDetailScreen(UserActions, AdminScreen):
    """Pushed from the users table; Escape goes back."""

    MODE = "users"
    REFRESH_SECONDS = 5.0
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("a", "adjust_balance", "Adjust balance"),
        Binding("x", "toggle_status", "Disable/enable"),
        Binding("k", "revoke_key", "Revoke key"),
        Binding("l", "key_limits", "Key limits", show=False),
        Binding("r", "request_limits", "Request limits", show=False),
        Binding("c", "create_key", "New key"),
    ]
    PALETTE = (
        ("New API key", "Create a key for this user", "create_key"),
        ("Revoke key", "Revoke the selected API key", "revoke_key"),
        ("Adjust balance", "Add or remove credit of this user", "adjust_balance"),
        ("Disable/enable user", "Toggle this account", "toggle_status"),
        ("Key limits", "Cap, reset, expiry, models, managing of the selected key", "key_limits"),
        ("Request limits", "Requests per minute and at once of this user", "request_limits"),
    )

    def __init__(self, user_id: int) -> None:
        super().__init__()
        self.user_id = user_id
        self.detail: UserDetail | None = None

    def compose_body(self) -> ComposeResult:
        yield Static(id="summary")
        with TabbedContent(id="tabs"):
            with TabPane("Keys", id="tab-keys"):
                yield LiveTable(
                    "Id", "Key", "Name", "Spent / cap", "Expires", "Manages keys", "Last used",
                    "Models", flex=("Name", "Models"), id="keys",
                )  # fmt: skip
            with TabPane("Ledger", id="tab-ledger"):
                yield cut_note("ledger")
                yield LiveTable(
                    "When", "Amount", "Kind", "Reason", flex=("Reason",), id="ledger",
                    follows_head=True,
                )  # fmt: skip
            with TabPane("Usage", id="tab-usage"):
                yield cut_note("usage")
                yield LiveTable(
                    "When", "Model", "In", "Out", "Cost", "Status", flex=("Model",), id="usage",
                    follows_head=True,
                )  # fmt: skip
            with TabPane("Payments", id="tab-payments"):
                yield cut_note("payments")
                yield LiveTable(
                    "When", "Amount", "Kind", "Status", id="payments", follows_head=True
                )

    async def fetch(self) -> UserDetail:
        return await self.services.run(self.services.user_detail, self.user_id)

    def show(self, data: Any) -> None:
        self.detail = detail = data
        defaults = self.services.limit_defaults()
        summary = summary_text(detail) + "\n" + request_limits_text(detail.user, defaults)
        self.query_one("#summary", Static).update(summary)
        self._table("keys").replace_rows(key_rows(detail))
        self._table("ledger").replace_rows(ledger_rows(detail))
        self._table("usage").replace_rows(usage_rows(detail))
        self._table("payments").replace_rows(payment_rows(detail))
        for table, (listed, what) in CUT_NOTES.items():
            note = self.query_one(f"#{table}-more", Static)
            note.display = listed in detail.cut
            note.update(f"The newest {LIST_LIMIT} {what}" if listed in detail.cut else "")

    def _table(self, name: str) -> LiveTable:
        return self.query_one(f"#{name}", LiveTable)

    def selected_user(self) -> UserRow | None:
        return self.detail.user if self.detail else None

    def selected_key(self) -> KeyRow | None:
        key_id = self._table("keys").selected_key()
        if self.detail is None or key_id is None:
            return None
        return next((k for k in self.detail.keys if k.id == key_id), None)

    def action_back(self) -> None:
        self.dismiss()

    @on(DataTable.RowSelected, "#usage")
    def _request_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on one of the account's requests opens it in full (as in Activity)."""
        self.open_request(int(str(event.row_key.value)))

    def action_revoke_key(self) -> None:
        key = self.selected_key()
        if key is None:
            self.notify("No key selected (Keys tab)", severity="warning")
            return
        self.query_one("#tabs", TabbedContent).active = "tab-keys"
        self.start(self._revoke_key, key)

    async def _revoke_key(self, key: KeyRow) -> None:
        email = self.detail.user.shown_email if self.detail else "this user"
        if not await self.confirm(
            "Revoke API key",
            f"Revoke key {key.prefix}… ({key.name or 'unnamed'}) of {email}?\n"
            "Requests with it fail at once.",
            confirm_label="Revoke",
        ):
            return
        await self.act(
            lambda: self.services.run(self.services.revoke_key, key.id),
            f"Key {key.prefix}… revoked",
        )

    def action_key_limits(self) -> None:
        key = self.selected_key()
        if key is None:
            self.notify("No key selected (Keys tab)", severity="warning")
            return
        self.query_one("#tabs", TabbedContent).active = "tab-keys"
        self.start(self._key_limits, key)

    async def _key_limits(self, key: KeyRow) -> None:
        async def submit(values: dict[str, str]) -> KeyRow:
            form = KeyLimitsForm(
                values["limit_usd"], values["limit_reset"], values["expires"], values["models"],
                values["manage_keys"], values["name"],
            )  # fmt: skip
            return await self.services.run(self.services.set_key_limits, key.id, form, key)

        saved = await self.app.push_screen_wait(
            FormDialog(f"Name and limits of key {key.prefix}…", [
                FormField("name", "Name", key.name, placeholder="laptop"),
                *limit_fields(key),
                manage_keys_field(yes_no(key.can_manage_keys)),
            ], submit, note=f"Spent this period: {usd_exact(key.spent_nanos)}")
        )  # fmt: skip
        if saved is not None:
            self.notify(f"Key {key.prefix}…: name and limits saved")
            self.reload()

    def action_create_key(self) -> None:
        if self.detail is not None:
            self.query_one("#tabs", TabbedContent).active = "tab-keys"
            self.start(self._create_key, self.detail.user)

    async def _create_key(self, user: UserRow) -> None:
        async def submit(v: dict[str, str]) -> str:
            limits = KeyLimitsForm(v["limit_usd"], v["limit_reset"], v["expires"], v["models"])
            create = self.services.create_key
            full, _ = await self.services.run(create, user.id, v["name"], v["manage_keys"], limits)
            return full

        full = await self.app.push_screen_wait(
            FormDialog(
                f"New API key for {user.shown_email}",
                [
                    FormField("name", "Name (optional)", placeholder="laptop"),
                    *limit_fields(None),
                    manage_keys_field("yes"),
                ],
                submit,
                submit_label="Create",
            )
        )
        if full:
            self.reload()
            await self.app.push_screen_wait(
                ConfirmDialog(
                    "New API key",
                    f"{full}\n\nStore it now: it is not shown again.",
                    confirm_label="Done",
                    notice=True,
                )
            )


def summary_text(detail: UserDetail) -> str:
    """Four lines about the account (markup; the email escaped); the id on a line of its own,
    as the line before is most of 80 columns already."""
    user, usage = detail.user, detail.usage
    return (
        f"[b]{escape(user.shown_email)}[/b]  [{status_colour(user.status)}]{user.status}[/]"
        f"  balance [b]{usd_exact(user.balance_nanos)}[/b]  held {usd_exact(user.held_nanos)}\n"
        f"{count(usage.requests)} requests · {count(usage.input_tokens)} tokens in · "
        f"{count(usage.output_tokens)} out · spent {usd_exact(usage.cost_nanos)}\n"
        f"created {moment(user.created_at)} · last seen {moment(user.last_seen)} (UTC)\n"
        f"id {user.uuid}"
    )


def status_colour(status: str) -> str:
    """Green for an active account, red for a disabled one (as in the users table)."""
    return "green" if status == "active" else "red"


def key_rows(detail: UserDetail) -> list[Row]:
    """Active API keys: the prefix only, never more; the id (a UUID) by its first 8 characters;
    what each spent in its period against its cap."""
    return [
        (
            k.id,
            [
                k.id[:SHORT_ID],
                k.prefix + "…",
                k.name,
                spend_text(k),
                expiry_text(k, detail.now),
                yes_no(k.can_manage_keys),
                history_moment(k.last_used_at, detail.now),
                models_text(k),
            ],
        )
        for k in detail.keys
    ]


def models_text(key: KeyRow) -> str:
    """The models a key may call: 'all', or its list (as `keys list` and the form show it)."""
    return "all" if key.allowed_models is None else ", ".join(key.allowed_models)


def expiry_text(key: KeyRow, now: datetime) -> str:
    """When a key stops working; 'expired ...' once it has (its requests get 401 key_expired)."""
    if key.expires_at is not None and key.expires_at <= now:
        return f"expired {dated_moment(key.expires_at)}"
    return dated_moment(key.expires_at)


def spend_text(key: KeyRow) -> str:
    """'$1.20 / $20.00 monthly', or the spend alone for a key without cap; exact, as the cap is
    checked (cents would show $19.996 of $20 as the cap reached)."""
    spent = usd_exact(key.spent_nanos)
    if key.limit_nanos is None:
        return spent
    return f"{spent} / {usd_exact(key.limit_nanos)} {key.limit_reset or 'total'}"


def cap_text(key: KeyRow) -> str:
    """A key's cap as the form shows it (exact, no $)."""
    return "" if key.limit_nanos is None else usd_exact(key.limit_nanos).lstrip("$")


def ledger_rows(detail: UserDetail) -> list[Row]:
    return [
        (
            str(e.id),
            [
                history_moment(e.created_at, detail.now),
                right(usd_exact(e.amount_nanos)),
                e.kind,
                e.reason,
            ],
        )
        for e in detail.ledger
    ]


def usage_rows(detail: UserDetail) -> list[Row]:
    return [
        (
            str(r.id),
            [
                history_moment(r.created_at, detail.now),
                r.model,
                right(count(r.input_tokens)),
                right(count(r.output_tokens)),
                right(usd_fine(r.cost_nanos)),
                status_cell(r.status),
            ],
        )
        for r in detail.requests
    ]


def payment_rows(detail: UserDetail) -> list[Row]:
    return [
        (
            str(p.id),
            [
                history_moment(p.created_at, detail.now),
                paid_cell(p.amount_nanos, p.refunded_nanos),
                p.kind,
                status_cell(p.status),
            ],
        )
        for p in detail.payments
    ]
