"""A yes/no question asked before anything that moves money or cuts access."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from admin_tui.widgets.live_table import visible


class ConfirmDialog(ModalScreen[bool]):
    """Dismissed with True only when the operator confirms (y or the confirm button)."""

    BINDINGS = [
        Binding("y", "confirm", "Yes"),
        Binding("n,escape", "cancel", "No"),
    ]

    def __init__(
        self, title: str, message: str, confirm_label: str = "Yes", *, notice: bool = False
    ) -> None:
        """`notice`: what was done already (a new key shown once): one button, focused, and no
        Cancel that would look like undoing it."""
        super().__init__(classes="dialog-screen")
        self._title = title
        self._message = message
        self._confirm_label = confirm_label
        self._notice = notice

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm"):
            yield Label(self._title, classes="dialog-title", markup=False)
            yield Static(visible(self._message), id="confirm-message", markup=False)
            with Horizontal(classes="dialog-buttons"):
                label = f"{self._confirm_label} (y)"
                if self._notice:
                    yield Button(label, variant="primary", id="yes")
                else:
                    yield Button(label, variant="error", id="yes")
                    yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        """Cancel has the focus (a notice: its one button), unless an Escape read with the key
        that asked closed the question already (its buttons are gone)."""
        for button in self.query("#yes" if self._notice else "#no").results(Button):
            button.focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
