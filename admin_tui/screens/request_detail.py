"""One request in full, opened with Enter on a request (Activity, the dashboard): route, model,
provider, the API key used, tokens, prices, cost, duration, status and the upstream's error."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from admin_tui.screens.base import AdminScreen
from admin_tui.screens.formatting import count, moment, usd_exact
from admin_tui.services import RequestDetail
from admin_tui.widgets.live_table import visible


class RequestDetailScreen(AdminScreen):
    """Pushed over the screen it was opened from; Escape goes back, u opens the user."""

    MODE = "activity"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("u", "user", "Open the user"),
    ]

    def __init__(self, row_id: int) -> None:
        super().__init__()
        self.row_id = row_id
        self.detail: RequestDetail | None = None

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="request-scroll"):  # focused: arrows, PgDn and End scroll it
            yield Static("Loading…", id="request-detail")

    def on_mount(self) -> None:  # AdminScreen.on_mount runs too (Textual walks the MRO)
        self.query_one("#request-scroll", VerticalScroll).focus()

    async def fetch(self) -> RequestDetail:
        return await self.services.run(self.services.request_detail, self.row_id)

    def show(self, data: Any) -> None:
        self.detail = data
        self.query_one("#request-detail", Static).update(Text(visible(describe_request(data))))

    def action_back(self) -> None:
        self.dismiss()

    def action_user(self) -> None:
        if self.detail is not None:
            self.open_user(self.detail.user_id)


def describe_request(d: RequestDetail) -> str:
    """The request as labelled lines (plain text: nothing in it is markup)."""
    status = d.status + (f" ({d.error_code})" if d.error_code else "")
    prices = ", ".join(
        f"{name} {usd_exact(nanos)}" for name, nanos in d.prices_per_1m_nanos.items()
    )
    lines = [
        ("Request id", d.request_id),
        ("When (UTC)", moment(d.created_at)),
        ("Route", d.route + (" (stream)" if d.stream else "")),
        ("User", d.email),
        ("API key", d.key or "(none)"),
        ("Model", d.model),
        ("Provider", f"{d.provider} (upstream model {d.upstream_model})"),
        ("Status", status),
        ("Upstream error", d.error_text or "-"),
        ("Duration", f"{count(d.duration_ms)} ms"),
        ("Tokens", f"{count(d.input_tokens)} in (cache read {count(d.cache_read_tokens)}, "
                   f"written {written(d.cache_write_tokens, d.cache_write_1h_tokens)}) / "
                   f"{count(d.output_tokens)} out"
                   + (" (estimated: the upstream did not say)" if d.estimated else "")),
        ("Prices per 1M", prices),
        *_advisor_lines(d),
        ("Cost", f"{usd_exact(d.cost_nanos)} (held {usd_exact(d.hold_nanos)})"),
    ]  # fmt: skip
    return "\n".join(f"{label:<15} {value}" for label, value in lines)


def _advisor_lines(d: RequestDetail) -> list[tuple[str, str]]:
    """The advisor model's part of a request that consulted one (its tokens are among the
    request's, charged at its own prices)."""
    if d.advisor_model is None:
        return []
    tokens, cache_read, cache_write, output = d.advisor_tokens
    prices = ", ".join(
        f"{name} {usd_exact(nanos)}" for name, nanos in d.advisor_prices_per_1m_nanos.items()
    )
    return [
        ("Advisor", f"{d.advisor_model}: {count(tokens)} in (cache read {count(cache_read)}, "
                    f"written {written(cache_write, d.advisor_cache_write_1h_tokens)}) / "
                    f"{count(output)} out, of the tokens above"),
        ("Its prices", prices),
    ]  # fmt: skip


def written(tokens: int, one_hour: int) -> str:
    """Cache writes, with how many were 1-hour writes (charged at their own price), if any."""
    return count(tokens) + (f" ({count(one_hour)} of them for 1 hour)" if one_hour else "")
