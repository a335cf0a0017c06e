"""The Textual app: six modes (F1-F6), the command palette, and the one factory shared by the
`codelace-box admin` command and the tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial

from textual import on
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.command import CommandPalette
from textual.screen import Screen
from textual.theme import ThemeProvider

from admin_tui.dialogs.palette import AdminPalette
from admin_tui.screens.activity import ActivityScreen
from admin_tui.screens.audit import AuditScreen
from admin_tui.screens.base import AdminScreen
from admin_tui.screens.dashboard import DashboardScreen
from admin_tui.screens.models import ModelsScreen
from admin_tui.screens.providers import ProvidersScreen
from admin_tui.screens.request_detail import RequestDetailScreen
from admin_tui.screens.user_detail import UserDetailScreen
from admin_tui.screens.users import UsersScreen
from admin_tui.services import AdminServices, Config
from admin_tui.widgets.navbar import MODES as NAV_MODES


class AdminApp(App[None]):
    """The operator's dashboard over the same database as `serve`."""

    TITLE = "codelace-box admin"
    CSS_PATH = "admin.tcss"
    MODES = {
        "dashboard": DashboardScreen,
        "users": UsersScreen,
        "models": ModelsScreen,
        "providers": ProvidersScreen,
        "activity": ActivityScreen,
        "audit": AuditScreen,
    }
    DEFAULT_MODE = "dashboard"
    BINDINGS = [
        *(
            Binding(key, f"switch_mode('{mode}')", title, show=False)
            for mode, key, title in NAV_MODES
        ),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "toggle_keys", "Keys"),
    ]

    def __init__(self, services: AdminServices) -> None:
        super().__init__()
        self.services = services

    def on_unmount(self) -> None:
        self.services.shutdown()

    @on(AdminScreen.OpenUser)
    async def open_user(self, message: AdminScreen.OpenUser) -> None:
        """A screen asked for one account in full: push it over that screen (once: an Enter
        read twice together asked twice before the first was up). When that account's detail
        is open below (`u` on a request opened from it), go back to it: no second copy."""
        opened = [
            screen
            for screen in self.screen_stack
            if isinstance(screen, UserDetailScreen) and screen.user_id == message.user_id
        ]
        if not opened:
            self.push_screen(UserDetailScreen(message.user_id))
            return
        while self.screen is not opened[-1] and isinstance(self.screen, AdminScreen):
            await self.pop_screen()  # the request (or report) over it; never a dialog

    @on(AdminScreen.OpenRequest)
    def open_request(self, message: AdminScreen.OpenRequest) -> None:
        """A screen asked for one request in full: push it over that screen (once, as a user)."""
        if not (
            isinstance(self.screen, RequestDetailScreen) and self.screen.row_id == message.row_id
        ):
            self.push_screen(RequestDetailScreen(message.row_id))

    def action_toggle_keys(self) -> None:
        """Show or hide the panel listing every key of the current screen (?)."""
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_command_palette(self) -> None:
        """Ctrl+P: the palette, as Textual's own, safe against keys read with Ctrl+P."""
        if self.use_command_palette and not isinstance(self.screen, CommandPalette):
            self.push_screen(AdminPalette(id="--command-palette"))

    def search_themes(self) -> None:
        """The palette's "Theme" command: a palette of the themes (safe as the first)."""
        self.push_screen(AdminPalette(providers=[ThemeProvider], placeholder="Search for themes…"))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Every screen, the actions of this screen, then every other screen's actions (which
        switch to their screen first), whatever screen the palette was opened on."""
        for mode, key, title in NAV_MODES:
            yield SystemCommand(
                f"Go to {title}",
                f"Switch to the {title} screen ({key.upper()})",
                partial(self.switch_mode, mode),
            )
        here = list(screen.palette_commands()) if isinstance(screen, AdminScreen) else []
        yield from here
        shown = {command.title for command in here}
        for mode, _, title in NAV_MODES:
            for name, help_text, action in self.MODES[mode].PALETTE:  # type: ignore[union-attr]
                if name not in shown:
                    shown.add(name)
                    yield SystemCommand(
                        name, f"{help_text} ({title})", partial(self._run_on, mode, action)
                    )
        yield from super().get_system_commands(screen)

    async def _run_on(self, mode: str, action: str) -> None:
        """Switch to a mode's screen and run one of its actions there: a screen pushed over it
        (a user's detail, the spend report) that has no such action is left first; a dialog
        is never closed so (a save it runs would end unseen)."""
        await self.switch_mode(mode)
        while (
            len(self.screen_stack) > 1
            and isinstance(self.screen, AdminScreen)
            and not hasattr(self.screen, f"action_{action}")
        ):
            await self.pop_screen()
        screen = self.screen
        if isinstance(screen, AdminScreen):  # a screen seen for the first time has no rows yet
            await screen.loaded()
        await screen.run_action(action)


def create_admin_app(config: Config, clock: Callable[[], datetime] | None = None) -> AdminApp:
    """The dashboard for a configuration; `clock` (naive UTC) freezes time for snapshots."""
    return AdminApp(AdminServices(config, clock))


def run_admin(config: Config) -> None:
    """Run the dashboard in this terminal until the operator quits."""
    create_admin_app(config).run()
