"""The one-line bar on top of every screen: the product name and the F-keys of the modes (the
name left out where the keys would not fit beside it: at 80 columns every key stays visible)."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.widgets import Static

MODES: tuple[tuple[str, str, str], ...] = (
    ("dashboard", "f1", "Dashboard"),
    ("users", "f2", "Users"),
    ("models", "f3", "Models"),
    ("providers", "f4", "Providers"),
    ("activity", "f5", "Activity"),
    ("audit", "f6", "Audit"),
)
NAME = " codelace-box "


class NavBar(Static):
    """Shows where the operator is and how to get elsewhere; the current mode is highlighted."""

    def __init__(self, current: str) -> None:
        super().__init__(self._line(current), classes="navbar")
        self._current = current

    def on_resize(self, event: events.Resize) -> None:
        keys = self._line(self._current, named=False)
        named = event.size.width >= keys.cell_len + len(NAME)
        self.update(self._line(self._current, named=named))

    @staticmethod
    def _line(current: str, named: bool = True) -> Text:
        text = Text(NAME if named else "", style="bold")
        for mode, key, title in MODES:
            style = "reverse bold" if mode == current else ""
            text.append(" ")
            text.append(f" {key.upper()} {title} ", style=style)
        return text
