"""F1 Dashboard: traffic, spend and errors of the last hour and day, revenue, users, a live
requests-per-minute chart and the newest requests, refreshed every two seconds."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.widgets import DataTable, Label, Static

from admin_tui.screens.base import AdminScreen
from admin_tui.screens.formatting import (
    alarm,
    clock_moment,
    count,
    right,
    status_cell,
    usd,
    usd_figure,
    usd_fine,
)
from admin_tui.services import Dashboard, RequestRow
from admin_tui.widgets.live_table import LiveTable
from admin_tui.widgets.rpm_chart import RpmChart

RECENT_ROWS = 8


class DashboardScreen(AdminScreen):
    """The operator's first look: is traffic flowing, is money coming in, is anything failing."""

    MODE = "dashboard"
    PALETTE = (("Refresh the dashboard", "Read the figures now", "reload"),)
    REFRESH_SECONDS = 2.0
    BINDINGS = [("r", "reload", "Refresh")]

    def __init__(self) -> None:
        super().__init__()
        self._warned = False
        self._owners: dict[str, int] = {}  # request row -> the user who sent it

    def compose_body(self) -> ComposeResult:
        yield Static(id="figures")
        yield RpmChart(id="rpm")
        yield Label(
            "Newest requests (Enter: the request · F5: all)",
            id="recent-title",
            classes="section-title",
        )
        yield LiveTable(
            "UTC", "Status", "User", "Tokens", "Cost", "Model", flex=("User", "Model"),
            id="recent", follows_head=True,
        )  # fmt: skip

    async def fetch(self) -> tuple[Dashboard, list[RequestRow]]:
        board = await self.services.run(self.services.dashboard)
        recent = await self.services.run(self.services.requests, "", RECENT_ROWS)
        return board, recent

    def show(self, data: Any) -> None:
        board, recent = data
        if self.services.created_database and not self._warned:
            self._warned = True
            self.notify(
                f"{self.services.config.database.path} did not exist: this is a new, empty "
                "database. Is database.path the one serve uses?",
                title="New database",
                severity="warning",
                timeout=20,
            )
        self.query_one("#figures", Static).update(figures_table(board))
        self.query_one("#rpm", RpmChart).update_counts(board.requests_per_minute)
        self._owners = {str(r.id): r.user_id for r in recent}
        self.query_one("#recent", LiveTable).replace_rows(
            [
                (
                    str(r.id),
                    [
                        clock_moment(r.created_at, board.now.date()),
                        status_cell(r.status),
                        r.email,
                        right(count(r.input_tokens + r.output_tokens)),
                        right(usd_fine(r.cost_nanos)),
                        r.model,
                    ],
                )
                for r in recent
            ]
        )

    @on(DataTable.RowSelected, "#recent")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a request opens it in full (u there opens the account that sent it)."""
        if str(event.row_key.value) in self._owners:
            self.open_request(int(str(event.row_key.value)))

    def action_reload(self) -> None:
        self.reload()


def figures_table(board: Dashboard) -> Table:
    """The figures grid: traffic per window on the left, the state of the box on the right."""
    table = Table(expand=True, box=None, padding=(0, 1), header_style="bold")
    table.add_column("")
    table.add_column("Last hour", justify="right")
    table.add_column("Last 24 h", justify="right")
    table.add_column("")
    table.add_column("", justify="right")
    hour, day = board.hour, board.day
    users = f"{count(board.users_total)} ({count(board.users_disabled)} disabled)"
    rows: list[tuple[str | Text, ...]] = [
        ("Requests", count(hour.requests), count(day.requests), "Users", users),
        (
            "Tokens",
            count(hour.tokens),
            count(day.tokens),
            "Revenue, all time",
            usd(board.revenue_total_nanos),
        ),
        (
            "Spend",
            usd_figure(hour.spend_nanos),
            usd_figure(day.spend_nanos),
            "Pending payments",
            count(board.pending_payments),
        ),
        (
            "Errors",
            alarm(hour.errors),
            alarm(day.errors),
            "Failing provider keys",
            alarm(board.failing_keys),
        ),
        ("Active users", count(hour.active_users), count(day.active_users), "", ""),
        ("Revenue", usd(board.revenue_hour_nanos), usd(board.revenue_day_nanos), "", ""),
    ]
    for row in rows:
        table.add_row(*row)
    return table
