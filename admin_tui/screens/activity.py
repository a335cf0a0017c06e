"""F5 Activity: live requests and payments, newest first, filtered by text (a request id too),
refreshed every two seconds; Enter opens a request in full; r opens the spend report. Each list
holds the newest LIST_LIMIT rows and says so when there are more."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input, Static, TabbedContent, TabPane

from admin_tui.screens.base import AdminScreen
from admin_tui.screens.formatting import (
    clock_moment,
    count,
    paid_cell,
    right,
    status_cell,
    usd_fine,
)
from admin_tui.screens.spend import SpendScreen
from admin_tui.screens.user_detail import cut_note
from admin_tui.services import LIST_LIMIT, PaymentRow, RequestRow
from admin_tui.widgets.live_table import LiveTable
from admin_tui.widgets.search_box import SearchBox

# what the filter looks in, per list (reports/traffic.py and reports/payments.py)
FILTERED_BY = {
    "requests": "email, account id, model, status (an error code too) or request id",
    "payments": "email, account id, kind or status",
}


class ActivityScreen(AdminScreen):
    """What is happening now: every request and every payment as it lands."""

    MODE = "activity"
    REFRESH_SECONDS = 2.0
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter"),
        Binding("t", "switch_tab", "Requests/payments"),
        Binding("r", "spend_report", "Spend report"),
        Binding("escape", "leave_filter", "Back to the table", show=False),
    ]
    PALETTE = (
        ("Switch requests/payments", "Show the other activity table", "switch_tab"),
        (
            "Filter activity",
            "Words of the email, model, status, kind or request id",
            "focus_filter",
        ),
        ("Spend report", "Spend by user, key or model over a window", "spend_report"),
    )

    def compose_body(self) -> ComposeResult:
        yield SearchBox("/ filter: email, account id, model, status, kind, request id", id="filter")
        with TabbedContent(id="activity-tabs"):
            with TabPane("Requests", id="tab-requests"):
                yield cut_note("requests")
                yield LiveTable(
                    "When (UTC)",
                    "Status",
                    "User",
                    "Model",
                    "In/out",
                    "Cost",
                    "ms",
                    flex=("User", "Model"),
                    id="requests",
                    follows_head=True,
                )
            with TabPane("Payments", id="tab-payments"):
                yield cut_note("payments")
                yield LiveTable(
                    "When (UTC)", "User", "Amount", "Kind", "Status", flex=("User",),
                    id="payments", follows_head=True,
                )  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self._owners: dict[str, dict[str, int]] = {"requests": {}, "payments": {}}

    def on_mount(self) -> None:  # AdminScreen.on_mount runs too (Textual walks the MRO)
        self.query_one("#requests", LiveTable).focus()

    async def fetch(self) -> tuple[list[RequestRow], list[PaymentRow]]:
        """The newest LIST_LIMIT of each, one more to tell whether there are more."""
        search = self.query_one("#filter", Input).value
        requests = await self.services.run(self.services.requests, search, LIST_LIMIT + 1)
        payments = await self.services.run(self.services.payments, search, LIST_LIMIT + 1)
        return requests, payments

    def show(self, data: Any) -> None:
        requests, payments = data
        self._show_cut("requests", len(requests) > LIST_LIMIT)
        self._show_cut("payments", len(payments) > LIST_LIMIT)
        requests, payments = requests[:LIST_LIMIT], payments[:LIST_LIMIT]
        today = self.services.now().date()
        self._owners = {
            "requests": {str(r.id): r.user_id for r in requests},
            "payments": {str(p.id): p.user_id for p in payments},
        }
        self.query_one("#requests", LiveTable).replace_rows(
            [
                (
                    str(r.id),
                    [
                        clock_moment(r.created_at, today),
                        status_cell(r.status if not r.error_code else f"{r.status}:{r.error_code}"),
                        r.email,
                        r.model,
                        right(f"{count(r.input_tokens)}/{count(r.output_tokens)}"),
                        right(usd_fine(r.cost_nanos)),
                        right(count(r.duration_ms)),
                    ],
                )
                for r in requests
            ]
        )
        self.query_one("#payments", LiveTable).replace_rows(
            [
                (
                    str(p.id),
                    [
                        clock_moment(p.created_at, today),
                        p.email,
                        paid_cell(p.amount_nanos, p.refunded_nanos),
                        p.kind,
                        status_cell(p.status),
                    ],
                )
                for p in payments
            ]
        )

    def _show_cut(self, table: str, cut: bool) -> None:
        """Say so when a list holds only the newest of the rows (the filter reaches the rest:
        an account's, a status's; `usage export` lists every request)."""
        note = self.query_one(f"#{table}-more", Static)
        note.display = cut
        note.update(
            f"The newest {LIST_LIMIT} {table}: there are more (older ones are not listed "
            f"here): / filters by {FILTERED_BY[table]}"
            if cut
            else ""
        )

    @on(DataTable.RowSelected, "#requests, #payments")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a request opens it in full; on a payment, the account it belongs to."""
        table = event.data_table.id or ""
        user_id = self._owners.get(table, {}).get(str(event.row_key.value))
        if table == "requests" and user_id is not None:
            self.open_request(int(str(event.row_key.value)))
        elif user_id is not None:
            self.open_user(user_id)

    def action_spend_report(self) -> None:
        self.app.push_screen(SpendScreen())

    @on(Input.Changed, "#filter")
    def _filter_changed(self) -> None:
        self.search_typed()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        tabs = self.query_one("#activity-tabs", TabbedContent)
        table = "#payments" if tabs.active == "tab-payments" else "#requests"
        self.query_one(table, LiveTable).focus()

    def action_leave_filter(self) -> None:
        """Escape in the filter box goes back to the table shown (the filter stays)."""
        self._filter_done()

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_switch_tab(self) -> None:
        tabs = self.query_one("#activity-tabs", TabbedContent)
        tabs.active = "tab-requests" if tabs.active == "tab-payments" else "tab-payments"
        self.query_one("#payments" if tabs.active == "tab-payments" else "#requests").focus()
