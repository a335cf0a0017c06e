"""The one-line bar on top of every screen: the product name and the F-keys of the modes."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

MODES: tuple[tuple[str, str, str], ...] = (
    ("dashboard", "f1", "Dashboard"),
    ("users", "f2", "Users"),
    ("models", "f3", "Models"),
    ("providers", "f4", "Providers"),
    ("activity", "f5", "Activity"),
    ("audit", "f6", "Audit"),
)


class NavBar(Static):
    """Shows where the operator is and how to get elsewhere; the current mode is highlighted."""

    def __init__(self, current: str) -> None:
        super().__init__(self._line(current), classes="navbar")

    @staticmethod
    def _line(current: str) -> Text:
        text = Text(" codelace-box ", style="bold")
        for mode, key, title in MODES:
            style = "reverse bold" if mode == current else ""
            text.append(" ")
            text.append(f" {key.upper()} {title} ", style=style)
        return text
