"""What every admin screen shares: the services, background reloads, actions and their errors.

A screen says how to `fetch` its data (on the database thread, via the services) and how to
`show` it; reloads run as exclusive Textual workers, on mount, on resume and, for live screens,
every REFRESH_SECONDS while the screen is visible: a periodic refresh never replaces a read still
in flight (on a long history a read may take longer than the interval: replacing it each time
showed nothing ever) and waits REFRESH_BACKOFF times as long as the last read took, so
refreshes alone never keep the database thread busy. A search box reloads once typing pauses
(`search_typed`), not on each keystroke, and a read begun before the last keystroke is not
shown (its term is no longer the box's). `act` runs one feature action and reports
the outcome: the feature's own message on a CodelaceError, a short confirmation otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar, Protocol, cast

from textual import work
from textual.app import ComposeResult, SystemCommand
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer

from admin_tui.dialogs.confirm import ConfirmDialog
from admin_tui.services import AdminServices, CodelaceError
from admin_tui.widgets.live_table import visible
from admin_tui.widgets.navbar import NavBar


def describe(exc: Exception) -> str:
    """A message for the operator: a feature error's own text, else the failure's kind."""
    if isinstance(exc, CodelaceError):
        return exc.message
    return f"unexpected {type(exc).__name__}: {exc}"


REFRESH_BACKOFF = 3  # a periodic refresh waits this many times the last read's duration
SEARCH_DELAY = 0.3  # seconds after the last keystroke in a search box before it searches


class HasServices(Protocol):
    services: AdminServices


class AdminScreen(Screen[None]):
    """Base of the dashboard's screens."""

    MODE: ClassVar[str] = ""
    REFRESH_SECONDS: ClassVar[float | None] = None
    # The screen's actions in the command palette: (title, help, action name without action_);
    # the app offers them from every screen (switching here first).
    PALETTE: ClassVar[tuple[tuple[str, str, str], ...]] = ()

    class OpenUser(Message):
        """Asks the app to show one account in full over the current screen."""

        def __init__(self, user_id: int) -> None:
            super().__init__()
            self.user_id = user_id

    class OpenRequest(Message):
        """Asks the app to show one request in full over the current screen."""

        def __init__(self, row_id: int) -> None:
            super().__init__()
            self.row_id = row_id

    def open_request(self, row_id: int) -> None:
        """Show one request in full over this screen (Escape comes back)."""
        self.post_message(self.OpenRequest(row_id))

    def open_user(self, user_id: int) -> None:
        """Show one account in full over this screen (Escape comes back)."""
        self.post_message(self.OpenUser(user_id))

    def __init__(
        self, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name, id, classes)
        self._loaded = asyncio.Event()  # set once the first reload has shown its data (or failed)
        self._reading = 0  # reloads in flight (a replaced one may still be ending)
        self._next_refresh = 0.0  # monotonic: no periodic refresh before then
        self._typed = 0  # keystrokes in the search box so far (a read remembers the count)
        self._search_timer: Timer | None = None  # the search due once typing pauses
        self._jobs: set[str] = set()  # the interactive jobs running (`start`): name and rows

    async def loaded(self, timeout: float = 5.0) -> None:
        """Wait until the screen has shown its data once (or failed to load it), at most
        `timeout` seconds: an action on the selected row needs the rows."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._loaded.wait(), timeout)

    @property
    def services(self) -> AdminServices:
        return cast(HasServices, self.app).services

    def compose(self) -> ComposeResult:
        yield NavBar(self.MODE)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets, between the nav bar and the footer."""
        yield from ()

    def on_mount(self) -> None:
        self.reload()
        if self.REFRESH_SECONDS:
            self.set_interval(self.REFRESH_SECONDS, self._tick)

    def on_screen_resume(self) -> None:
        self.reload()

    def _tick(self) -> None:
        """A periodic refresh, unless a read is in flight or the last one ended too recently."""
        if self._search_timer is not None:  # a search is due: it reads the box then
            return
        if self.is_current and not self._reading and time.monotonic() >= self._next_refresh:
            self.reload()

    def search_typed(self) -> None:
        """The search box changed: search SEARCH_DELAY after the last keystroke, not on each
        one (each search waits its turn on the one database thread, actions behind it)."""
        self._typed += 1
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search_timer = self.set_timer(SEARCH_DELAY, self._search_now)

    def _search_now(self) -> None:
        self._search_timer = None
        self.reload()

    def reload(self) -> None:
        """Fetch and show fresh data in the background (a newer reload replaces an older one)."""
        self._reload()

    @work(exclusive=True, group="reload", exit_on_error=False)
    async def _reload(self) -> None:
        self._reading += 1
        began, typed = time.monotonic(), self._typed
        try:
            data = await self.fetch()
        except Exception as exc:
            self.notify(describe(exc), title="Could not load", severity="error")
            self._loaded.set()
            return
        finally:
            self._reading -= 1
            ended = time.monotonic()
            self._next_refresh = ended + REFRESH_BACKOFF * (ended - began)
        if typed != self._typed:  # read for a term typed over since: the newer one's search
            return  # is due (or running), and shows its own
        self.show(data)
        self._loaded.set()

    async def fetch(self) -> Any:
        """Read what the screen shows (through the services)."""
        return None

    def show(self, data: Any) -> None:
        """Put fetched data on screen."""

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """A toast; plain text unless asked (emails, reasons and upstream messages may hold
        square brackets that are not markup)."""
        message, title = visible(message), visible(title)  # an upstream's words, ESC and all
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    async def act(self, action: Callable[[], Awaitable[Any]], done: str) -> bool:
        """Run one feature action; notify its outcome and reload. True when it succeeded."""
        try:
            await action()
        except Exception as exc:
            self.notify(describe(exc), title="Not done", severity="error", timeout=8)
            return False
        self.notify(done)
        self.reload()
        return True

    async def confirm(self, title: str, message: str, confirm_label: str = "Yes") -> bool:
        """Ask a yes/no question (call from a worker)."""
        dialog = ConfirmDialog(title, message, confirm_label)
        return bool(await self.app.push_screen_wait(dialog))  # type: ignore[arg-type]

    def start(self, job: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run an interactive job (dialogs, actions) as a worker of this screen; not a second
        time on the same row while it runs: a key pressed twice before its form was up (a
        double tap, keys an SSH link delivers together) opened the form twice, the second
        one inviting the same credit again once the first was saved."""
        name = f"{getattr(job, '__name__', job)!r}{args!r}"
        if name in self._jobs:
            return
        self._jobs.add(name)
        self.run_worker(self._guarded(name, job, *args), group="action")

    async def _guarded(self, name: str, job: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """A job's own failure (the database file gone, a read it makes before its dialog) is
        the operator's to read in a toast: a worker that raises would end the whole app."""
        try:
            await job(*args)
        except Exception as exc:
            self.notify(describe(exc), title="Not done", severity="error", timeout=8)
        finally:
            self._jobs.discard(name)

    def palette_commands(self) -> Iterable[SystemCommand]:
        """Commands this screen adds to the command palette, run here."""
        for title, help_text, action in self.PALETTE:
            yield SystemCommand(title, help_text, getattr(self, f"action_{action}"))
