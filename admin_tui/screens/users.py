"""F2 Users: a searchable table of accounts and the actions on them (create, adjust balance,
disable/enable); Enter opens a user's detail."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input, Static

from admin_tui.dialogs.form import FormDialog, FormField
from admin_tui.screens.base import AdminScreen
from admin_tui.screens.formatting import count, history_moment, right, status_cell, usd_exact
from admin_tui.screens.user_actions import UserActions
from admin_tui.services import USERS_SHOWN, UserRow
from admin_tui.widgets.live_table import LiveTable
from admin_tui.widgets.search_box import SearchBox


class UsersScreen(UserActions, AdminScreen):
    """Every account; type to filter by email."""

    MODE = "users"
    REFRESH_SECONDS = 5.0
    BINDINGS = [
        Binding("enter", "details", "Details", show=True),
        Binding("n", "create_user", "New user"),
        Binding("a", "adjust_balance", "Adjust balance"),
        Binding("x", "toggle_status", "Disable/enable"),
        Binding("r", "request_limits", "Request limits", show=False),
        Binding("slash", "focus_search", "Search"),
        Binding("escape", "leave_search", "Back to the table", show=False),
    ]
    PALETTE = (
        ("New user", "Create an account (invite)", "create_user"),
        ("Adjust balance", "Add or remove credit of the selected user", "adjust_balance"),
        ("Disable/enable user", "Toggle the selected account", "toggle_status"),
        ("User details", "Keys, ledger, usage, payments", "details"),
        ("Request limits", "Per-minute and in-flight limits of the user", "request_limits"),
    )

    def __init__(self) -> None:
        super().__init__()
        self._rows: dict[str, UserRow] = {}
        self._cut = False  # more accounts match than the table lists

    def compose_body(self) -> ComposeResult:
        yield SearchBox("/ search emails or ids · Enter on a row opens the user", id="search")
        yield LiveTable(
            "Email", "Balance", "Requests", "Last seen", "Status", flex=("Email",), id="users"
        )
        yield Static("", id="users-more", markup=False)

    def on_mount(self) -> None:  # AdminScreen.on_mount runs too (Textual walks the MRO)
        self.query_one("#users", LiveTable).focus()

    async def fetch(self) -> tuple[list[UserRow], int | None]:
        """The first USERS_SHOWN matching accounts, one more to tell whether there are more,
        and how many there are in all when the whole list was cut."""
        search = self.query_one("#search", Input).value
        users = await self.services.run(self.services.users, search, USERS_SHOWN + 1)
        total = None
        if len(users) > USERS_SHOWN and not search.strip():
            total = await self.services.run(self.services.count_users)
        return users, total

    def show(self, data: Any) -> None:
        data, total = data
        self._show_cut(len(data) > USERS_SHOWN, total)
        data = data[:USERS_SHOWN]
        now = self.services.now()
        self._rows = {str(row.id): row for row in data}
        self.query_one("#users", LiveTable).replace_rows(
            [
                (
                    str(row.id),
                    [
                        row.shown_email,
                        right(usd_exact(row.balance_nanos)),
                        right(count(row.requests)),
                        history_moment(row.last_seen, now),
                        status_cell(row.status),
                    ],
                )
                for row in data
            ]
        )

    def _show_cut(self, cut: bool, total: int | None) -> None:
        """Say so when the table lists only the first (oldest) of the matching accounts."""
        self._cut = cut
        more = self.query_one("#users-more", Static)
        more.display = cut
        of = f"of {total:,} accounts" if total else "matching accounts"
        more.update(
            f"Showing the first {USERS_SHOWN:,} {of} (oldest first): / to search" if cut else ""
        )

    def selected_user(self) -> UserRow | None:
        key = self.query_one("#users", LiveTable).selected_key()
        return self._rows.get(key) if key else None

    @on(Input.Changed, "#search")
    def _search_changed(self) -> None:
        self.search_typed()

    @on(Input.Submitted, "#search")
    def _search_done(self) -> None:
        self.query_one("#users", LiveTable).focus()

    @on(DataTable.RowSelected, "#users")
    def _row_selected(self) -> None:
        self.action_details()

    def action_leave_search(self) -> None:
        """Escape in the search box goes back to the table (the search stays)."""
        self.query_one("#users", LiveTable).focus()

    def action_focus_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_details(self) -> None:
        user = self.selected_user()
        if user is None:
            self.notify("No user selected", severity="warning")
            return
        self.open_user(user.id)

    def action_create_user(self) -> None:
        self.start(self._create_user)

    async def _create_user(self) -> None:
        async def submit(values: dict[str, str]) -> UserRow:
            return await self.services.run(self.services.create_user, values["email"])

        user = await self.app.push_screen_wait(
            FormDialog(
                "New user",
                [FormField("email", "Email", placeholder="someone@example.com")],
                submit,
                submit_label="Create",
                note="The account may sign in with a code, also under invite-only signup.",
            )
        )
        if user:
            self.notify(f"Created {user.shown_email}")
            self.query_one("#users", LiveTable).select_when_shown(str(user.id))
            if self._cut:  # the newest account is past the end of the list: search for it
                self.query_one("#search", Input).value = user.email
            self.reload()
