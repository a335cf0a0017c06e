"""Who spent what: usage grouped by user, API key or model over a window (as `usage report`),
sorted by spend; g changes the grouping, w the window, s (or a click on Spend) the order."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from admin_tui.screens.base import AdminScreen
from admin_tui.screens.formatting import count, right, usd_exact
from admin_tui.services import GROUPINGS, SpendRow
from admin_tui.widgets.live_table import LiveTable

WINDOWS = ("24h", "7d", "30d", "all")
SPEND_SHOWN = 1000  # rows listed (each is drawn on the event loop: 20,000 took seconds)


class SpendScreen(AdminScreen):
    """Pushed from Activity (r) or the palette; Escape goes back."""

    MODE = "activity"
    REFRESH_SECONDS = 10.0
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("g", "grouping", "By user/key/model"),
        Binding("w", "window", "Window"),
        Binding("s", "sort_spend", "Sort by spend"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.by = "user"
        self.window = "7d"
        self.biggest_first = True
        self._rows: list[SpendRow] = []

    def compose_body(self) -> ComposeResult:
        yield Static("", id="spend-title", classes="section-title")
        yield LiveTable(
            "Group", "Detail", "Requests", "Tokens in", "Tokens out", "Spend", "Errors",
            flex=("Group", "Detail"), id="spend",
        )  # fmt: skip
        yield Static("", id="spend-more", markup=False)

    async def fetch(self) -> list[SpendRow]:
        return await self.services.run(self.services.spend, self.by, self.window)

    def show(self, data: Any) -> None:
        self._rows = list(data)
        self._show_rows()

    def _show_rows(self) -> None:
        rows = sorted(self._rows, key=lambda r: r.spend_nanos, reverse=self.biggest_first)
        order = "biggest" if self.biggest_first else "smallest"
        window = "all time" if self.window == "all" else f"the last {self.window}"
        total = sum(r.spend_nanos for r in rows)
        self.query_one("#spend-title", Static).update(
            f"Spend by {self.by}, {window}, {order} first · total {usd_exact(total)} "
            "(g grouping · w window · s order)"
        )
        self._show_cut(len(rows), order)
        rows = rows[:SPEND_SHOWN]
        self.query_one("#spend", LiveTable).replace_rows(
            [
                (
                    r.key or r.label,
                    [
                        r.label,
                        r.detail,
                        right(count(r.requests)),
                        right(count(r.input_tokens)),
                        right(count(r.output_tokens)),
                        right(usd_exact(r.spend_nanos)),
                        right(count(r.errors)),
                    ],
                )
                for r in rows
            ]
        )

    def _show_cut(self, groups: int, order: str) -> None:
        """Say so when the table lists only the first SPEND_SHOWN groups of the report."""
        more = self.query_one("#spend-more", Static)
        more.display = groups > SPEND_SHOWN
        more.update(
            f"Listing the {SPEND_SHOWN:,} {order} of {groups:,} groups (the total counts them "
            "all): codelace-box usage report lists every one"
            if groups > SPEND_SHOWN
            else ""
        )

    def action_back(self) -> None:
        self.dismiss()

    def action_grouping(self) -> None:
        self.by = GROUPINGS[(GROUPINGS.index(self.by) + 1) % len(GROUPINGS)]
        self.reload()

    def action_window(self) -> None:
        self.window = WINDOWS[(WINDOWS.index(self.window) + 1) % len(WINDOWS)]
        self.reload()

    def action_sort_spend(self) -> None:
        self.biggest_first = not self.biggest_first
        self._show_rows()

    @on(DataTable.HeaderSelected, "#spend")
    def _header_selected(self, event: DataTable.HeaderSelected) -> None:
        if str(event.label) == "Spend":
            self.action_sort_spend()
