"""A modal form: labelled inputs, a submit coroutine, and its error shown inline.

The dialog stays open until the submit coroutine succeeds, so a typo (a price that is not a
number, a duplicate model id) costs nothing: the message appears under the fields and the
operator fixes the field. The coroutine may itself ask for confirmation (push_screen_wait).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Select, Static

from admin_tui.dialogs.palette import not_laid_out
from admin_tui.services import CodelaceError, quoted_back
from admin_tui.widgets.live_table import visible

T = TypeVar("T")


class Abandon(Exception):
    """Raised by a submit coroutine to keep the form open silently (e.g. not confirmed)."""


@dataclass(frozen=True)
class FormField:
    """One input of a form."""

    name: str
    label: str
    value: str = ""
    placeholder: str = ""
    password: bool = False
    choices: tuple[str, ...] = ()  # a Select of these instead of an Input
    read_only: bool = False


Submit = Callable[[dict[str, str]], Awaitable[T]]


class FormDialog(ModalScreen[T | None]):
    """Dismissed with the submit coroutine's result, or None when cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save"),
    ]

    def __init__(
        self,
        title: str,
        fields: Sequence[FormField],
        submit: Submit[T],
        submit_label: str = "Save",
        note: str = "",
    ) -> None:
        super().__init__(classes="dialog-screen")
        self._title = title
        self._fields = list(fields)
        self._submit = submit
        self._submit_label = submit_label
        self._note = note
        self._saving = False  # a save is running: it cannot be undone, so none may start
        self._saved: tuple[T] | None = None  # its result, the form closing once it is on top

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="form"):
            yield Label(self._title, classes="dialog-title", markup=False)
            if self._note:
                yield Static(self._note, classes="dialog-note", markup=False)
            for spec in self._fields:
                with Horizontal(classes="field-row"):
                    yield Label(spec.label, classes="field-label")
                    yield self._widget(spec)
            yield Static("", id="form-error", classes="form-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(
                    f"{self._submit_label} (^s)", variant="primary", id="save", compact=True
                )
                yield Button("Cancel (esc)", id="cancel", compact=True)

    @staticmethod
    def _widget(spec: FormField) -> Input | Select[str]:
        if spec.choices:
            return Select(
                [(c, c) for c in spec.choices],
                value=spec.value or spec.choices[0],
                allow_blank=False,
                id=f"field-{spec.name}",
                compact=True,
            )
        return Input(
            value=spec.value,
            placeholder=spec.placeholder,
            password=spec.password,
            disabled=spec.read_only,
            id=f"field-{spec.name}",
            compact=True,
        )

    def on_mount(self) -> None:
        """The first field the operator may type in has the focus (none when an Escape read
        with the key that opened the form closed it already: its fields are gone)."""
        editable = [s for s in self._fields if not s.read_only]
        for first in self.query(f"#field-{editable[0].name}") if editable else ():
            first.focus()

    def on_key(self, event: events.Key) -> None:
        """PgUp/PgDn read together with the key that opened a choice's list reached the list
        before its first layout, where Textual's page move (the app's binding, once the key
        has come up to it) raised KeyError and ended the dashboard: such a key stops here."""
        if event.key in ("pageup", "pagedown"):
            target = self.focused
            if isinstance(target, OptionList) and not_laid_out(target):
                event.stop()
                event.prevent_default()

    def values(self) -> dict[str, str]:
        """What the operator typed, by field name."""
        result: dict[str, str] = {}
        for spec in self._fields:
            widget = self.query_one(f"#field-{spec.name}")
            value = widget.value if isinstance(widget, Input | Select) else ""
            result[spec.name] = value if isinstance(value, str) else ""
        return result

    def _quoted(self, message: str, values: dict[str, str]) -> str:
        """A refusal as the form shows it: of what was typed (not a read-only field, not a
        choice), only the start of a long or key-like value (a key pasted in the wrong field)."""
        typed = [values[spec.name] for spec in self._fields if not (spec.read_only or spec.choices)]
        return quoted_back(message, typed)

    def show_error(self, message: str) -> None:
        """Show why the form was not accepted."""
        error = self.query_one("#form-error", Static)
        error.update(visible(message))
        if message:
            error.scroll_visible(animate=False)

    @on(Input.Submitted)
    @on(Button.Pressed, "#save")
    def _submitted(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#cancel")
    def _cancelled(self) -> None:
        self.action_cancel()

    def action_save(self) -> None:
        if not self._saving and self._saved is None:
            self._saving = True
            self._save()

    def action_cancel(self) -> None:
        if self._saving:  # leaving now would hide whether it was done
            self.show_error("Saving: wait for the outcome before closing the form")
            return
        self.dismiss(None)

    @work(group="form-save")
    async def _save(self) -> None:
        self.show_error("")
        values = self.values()
        try:
            result = await self._submit(values)
        except CodelaceError as exc:
            self.show_error(self._quoted(exc.message, values))
            return
        except Abandon:
            return
        except Exception as exc:  # unforeseen (a full disk, a bug): say so, keep the app up
            self.log.error(f"form submit failed: {type(exc).__name__}")
            said = f"Not saved: unexpected {type(exc).__name__}: {exc}"
            self.show_error(self._quoted(said, values))
            return
        finally:
            self._saving = False
        self._saved = (result,)
        if self.app.screen is self:  # not `is_current`: true under a modal screen too
            self.dismiss(result)

    def on_screen_resume(self) -> None:
        """A save that ended under another screen (the command palette, opened meanwhile)
        closes the form now: dismissing then would have closed that screen instead (Textual
        pops the top one), leaving this form up as if nothing was saved."""
        if self._saved is not None:
            self.dismiss(self._saved[0])
