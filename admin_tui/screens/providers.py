"""F4 Providers: upstream providers and their keys, shown masked (the stored hint only).
Add a provider, add/rotate/disable keys, test a key against the upstream, see failing keys."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.widgets import DataTable, Label, Static

from admin_tui.dialogs.form import Abandon, FormDialog, FormField
from admin_tui.screens.base import AdminScreen, describe
from admin_tui.screens.formatting import alarm, right, short_moment, status_cell
from admin_tui.services import PROVIDER_KINDS, InvalidRequest, ProviderKeyRow, ProviderRow
from admin_tui.widgets.live_table import LiveTable

KEY_NOTE = "Keys are stored encrypted and only ever shown masked."


class ProvidersScreen(AdminScreen):
    """Providers on top, the selected provider's keys below."""

    MODE = "providers"
    REFRESH_SECONDS = 5.0
    BINDINGS = [
        Binding("n", "add_provider", "Add provider"),
        Binding("k", "add_key", "Add key"),
        Binding("o", "rotate_key", "Rotate key"),
        Binding("x", "toggle_key", "Key on/off"),
        Binding("t", "test_key", "Test key"),
        Binding("e", "toggle_provider", "Provider on/off"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._providers: dict[str, ProviderRow] = {}

    def compose_body(self) -> ComposeResult:
        yield LiveTable(
            "Provider",
            "Kind",
            "Base URL",
            "On",
            "Keys",
            "Failing",
            flex=("Base URL",),
            id="providers",
        )
        yield Label("Keys (masked)", id="keys-title", classes="section-title")
        yield LiveTable("Id", "Key", "State", "Reason", "Failed at", flex=("Reason",), id="keys")
        yield Static("", id="key-check")

    async def fetch(self) -> list[ProviderRow]:
        return await self.services.run(self.services.providers)

    def show(self, data: Any) -> None:
        self._providers = {row.name: row for row in data}
        self.query_one("#providers", LiveTable).replace_rows(
            [
                (
                    row.name,
                    [
                        row.name,
                        row.kind,
                        row.base_url or "(default)",
                        status_cell("yes" if row.enabled else "no"),
                        right(str(len(row.keys))),
                        alarm(row.failing_keys),
                    ],
                )
                for row in data
            ]
        )
        self._show_keys()

    def _show_keys(self) -> None:
        provider = self.selected_provider()
        title = f"Keys of {provider.name} (masked)" if provider else "Keys (masked)"
        self.query_one("#keys-title", Label).update(title)
        self.query_one("#keys", LiveTable).replace_rows(
            [
                (
                    str(k.id),
                    [
                        str(k.id),
                        k.hint,
                        status_cell(key_state(k)),
                        k.failure_reason,
                        short_moment(k.last_failed_at),
                    ],
                )
                for k in (provider.keys if provider else [])
            ]
        )

    @on(DataTable.RowHighlighted, "#providers")
    def _provider_highlighted(self) -> None:
        self._show_keys()
        self._describe_key()

    @on(DataTable.RowHighlighted, "#keys")
    def _key_highlighted(self) -> None:
        self._describe_key()

    def _describe_key(self) -> None:
        """The line under the keys: the highlighted key's state and its whole failure reason."""
        selected = self.selected_key()
        self.query_one("#key-check", Static).update(
            Text(describe_key(*selected)) if selected else ""
        )

    def selected_provider(self) -> ProviderRow | None:
        key = self.query_one("#providers", LiveTable).selected_key()
        return self._providers.get(key) if key else None

    def selected_key(self) -> tuple[ProviderRow, ProviderKeyRow] | None:
        provider = self.selected_provider()
        key_id = self.query_one("#keys", LiveTable).selected_key()
        if provider is None or key_id is None:
            return None
        key = next((k for k in provider.keys if str(k.id) == key_id), None)
        return (provider, key) if key else None

    def _need_provider(self) -> ProviderRow | None:
        provider = self.selected_provider()
        if provider is None:
            self.notify("No provider selected: add one with n", severity="warning")
        return provider

    def _need_key(self) -> tuple[ProviderRow, ProviderKeyRow] | None:
        selected = self.selected_key()
        if selected is None:
            self.notify("No key selected (the lower table)", severity="warning")
        return selected

    # -- providers ------------------------------------------------------------------------

    def action_add_provider(self) -> None:
        self.start(self._add_provider)

    async def _add_provider(self) -> None:
        async def submit(v: dict[str, str]) -> str:
            await self.services.run(
                self.services.add_provider, v["name"], v["kind"], v["base_url"], v["key"]
            )
            return v["name"].strip()

        name = await self.app.push_screen_wait(
            FormDialog(
                "Add provider",
                [
                    FormField("name", "Name", placeholder="openai"),
                    FormField("kind", "Kind", choices=PROVIDER_KINDS),
                    FormField(
                        "base_url",
                        "Base URL",
                        placeholder="https://openrouter.ai/api/v1",
                    ),
                    FormField("key", "API key", password=True),
                ],
                submit,
                submit_label="Add",
                note="The name is the prefix of its model ids; an empty base URL means the "
                f"kind's own. {KEY_NOTE}",
            )
        )
        if name:
            self.notify(f"Provider {name} added")
            self.query_one("#providers", LiveTable).select_when_shown(name)
            self.reload()

    def action_toggle_provider(self) -> None:
        provider = self._need_provider()
        if provider is not None:
            self.start(self._toggle_provider, provider)

    async def _toggle_provider(self, provider: ProviderRow) -> None:
        enable = not provider.enabled
        if not enable and not await self.confirm(
            "Disable provider",
            f"Disable {provider.name}? Its models answer 503 until it is enabled again.",
            confirm_label="Disable",
        ):
            return
        await self.act(
            lambda: self.services.run(self.services.set_provider_enabled, provider.name, enable),
            f"Provider {provider.name} {'enabled' if enable else 'disabled'}",
        )

    # -- keys -----------------------------------------------------------------------------

    def action_add_key(self) -> None:
        provider = self._need_provider()
        if provider is not None:
            self.start(self._add_key, provider)

    async def _add_key(self, provider: ProviderRow) -> None:
        async def submit(v: dict[str, str]) -> str:
            return await self.services.run(self.services.add_provider_key, provider.name, v["key"])

        hint = await self.app.push_screen_wait(
            FormDialog(
                f"Add a key to {provider.name}",
                [FormField("key", "API key", password=True)],
                submit,
                submit_label="Add",
                note=KEY_NOTE,
            )
        )
        if hint:
            self.notify(f"Key {hint} added to {provider.name}")
            self.reload()

    def action_rotate_key(self) -> None:
        selected = self._need_key()
        if selected is not None:
            self.start(self._rotate_key, *selected)

    async def _rotate_key(self, provider: ProviderRow, old: ProviderKeyRow) -> None:
        async def submit(v: dict[str, str]) -> str:
            if not v["key"].strip():  # refused before the question, in the feature's words
                raise InvalidRequest("a provider key must not be empty")
            if not await self.confirm(
                "Rotate key",
                f"Add the new key to {provider.name} and take key {old.hint} out of rotation?",
                confirm_label="Rotate",
            ):
                raise Abandon
            return await self.services.run(
                self.services.rotate_key, provider.name, old.id, v["key"]
            )

        hint = await self.app.push_screen_wait(
            FormDialog(
                f"Rotate key {old.hint} of {provider.name}",
                [FormField("key", "New API key", password=True)],
                submit,
                submit_label="Rotate",
                note=f"The new key joins the rotation and {old.hint} leaves it. {KEY_NOTE}",
            )
        )
        if hint:
            self.notify(f"Key {old.hint} replaced by {hint}")
            self.reload()

    def action_toggle_key(self) -> None:
        selected = self._need_key()
        if selected is not None:
            self.start(self._toggle_key, *selected)

    async def _toggle_key(self, provider: ProviderRow, key: ProviderKeyRow) -> None:
        enable = not key.enabled or key.failing
        if not await self._confirm_toggle(provider, key):
            return
        await self.act(
            lambda: self.services.run(self.services.set_key_enabled, key.id, enable),
            f"Key {key.hint} {'back in rotation' if enable else 'disabled'}",
        )

    async def _confirm_toggle(self, provider: ProviderRow, key: ProviderKeyRow) -> bool:
        """Enabling a key that is off asks nothing; a failing or a working key, yes."""
        if not key.enabled:
            return True
        if key.failing:
            return await self.confirm(
                "Failing key",
                f"Key {key.hint} of {provider.name} failed: "
                f"{key.failure_reason or 'no reason recorded'}\n"
                "Put it back in rotation? (t tests it first)",
                confirm_label="Put back",
            )
        return await self.confirm(
            "Disable key",
            f"Take key {key.hint} of {provider.name} out of rotation?",
            confirm_label="Disable",
        )

    def action_test_key(self) -> None:
        selected = self._need_key()
        if selected is not None:
            self.start(self._test_key, *selected)

    async def _test_key(self, provider: ProviderRow, key: ProviderKeyRow) -> None:
        line = self.query_one("#key-check", Static)
        line.update(f"Testing key {key.hint} of {provider.name}…")
        try:
            result = await self.services.test_key(key.id)
        except Exception as exc:
            line.update(Text(f"Key {key.hint}: {describe(exc)}"))
            return
        verdict = "OK" if result.ok else "FAILED"
        advice = " (x puts it back in rotation)" if result.ok and key.failing else ""
        line.update(Text(f"Key {key.hint} of {provider.name}: {verdict}: {result.message}{advice}"))
        self.notify(
            result.message,
            title=f"Key {key.hint}",
            severity="information" if result.ok else "error",
        )

    def palette_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand(
            "Add provider", "Register an upstream with its key", self.action_add_provider
        )
        yield SystemCommand(
            "Add provider key", "Another key for the selected provider", self.action_add_key
        )
        yield SystemCommand(
            "Rotate provider key", "Replace the selected key", self.action_rotate_key
        )
        yield SystemCommand(
            "Test provider key", "Ask the upstream whether the key works", self.action_test_key
        )
        yield SystemCommand(
            "Enable/disable provider key", "Toggle the selected key", self.action_toggle_key
        )
        yield SystemCommand(
            "Enable/disable provider", "Toggle the selected provider", self.action_toggle_provider
        )


def key_state(key: ProviderKeyRow) -> str:
    """One word for a key: off (disabled), failing (out of rotation until fixed), in use."""
    if not key.enabled:
        return "off"
    return "failing" if key.failing else "in use"


def describe_key(provider: ProviderRow, key: ProviderKeyRow) -> str:
    """What the operator should know about a key, the upstream's whole reason included."""
    head = f"Key {key.hint} of {provider.name}: "
    if not key.enabled:
        return head + "off (x puts it back in rotation)."
    if key.failing:
        return (
            head + f"failing since {short_moment(key.last_failed_at)} UTC: "
            f"{key.failure_reason or 'no reason recorded'} (t tests it, x puts it back)."
        )
    return head + "in use (t tests it, x takes it out, o rotates it)."
