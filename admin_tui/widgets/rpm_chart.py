"""The live requests-per-minute chart: a caption with the figures above a Sparkline."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline


class RpmChart(Vertical):
    """Requests per minute over the last hour, oldest on the left."""

    def compose(self) -> ComposeResult:
        yield Label("Requests per minute, last 60 min", id="rpm-caption")
        yield Sparkline([0.0], summary_function=max, id="rpm-spark")

    def update_counts(self, counts: list[int]) -> None:
        """Show new per-minute counts (the last one is the current minute)."""
        now = counts[-1] if counts else 0
        peak = max(counts, default=0)
        total = sum(counts)
        self.query_one("#rpm-caption", Label).update(
            f"Requests per minute, last 60 min: now {now} · peak {peak} · total {total}"
        )
        self.query_one("#rpm-spark", Sparkline).data = [float(c) for c in counts] or [0.0]
