"""F4 Providers: upstream providers and their keys, shown masked (the stored hint only).
Add, edit or remove a provider; its keys' actions are in provider_keys.py."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Label, Static

from admin_tui.dialogs.form import FormDialog, FormField
from admin_tui.screens.base import AdminScreen
from admin_tui.screens.formatting import alarm, history_moment, right, status_cell
from admin_tui.screens.provider_keys import KEY_NOTE, ProviderKeyActions, describe_key, key_state
from admin_tui.services import PROVIDER_KINDS, ProviderExtras, ProviderKeyRow, ProviderRow
from admin_tui.widgets.live_table import LiveTable, visible


class ProvidersScreen(ProviderKeyActions, AdminScreen):
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
        Binding("u", "edit_provider", "Edit provider"),
        Binding("d", "remove_provider", "Remove provider"),
        Binding("r", "remove_key", "Remove key"),
    ]
    PALETTE = (
        ("Add provider", "Register an upstream with its key", "add_provider"),
        ("Edit provider", "Change the kind or base URL", "edit_provider"),
        ("Remove provider", "Delete the selected provider", "remove_provider"),
        ("Enable/disable provider", "Toggle the selected provider", "toggle_provider"),
        ("Add provider key", "Another key for the selected provider", "add_key"),
        ("Rotate provider key", "Replace the selected key", "rotate_key"),
        ("Test provider key", "Ask the upstream whether the key works", "test_key"),
        (
            "Enable/disable provider key",
            "Toggle the selected key (a failing one is tested first)",
            "toggle_key",
        ),
        ("Remove provider key", "Delete the selected key", "remove_key"),
    )

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
            flex=("Provider", "Base URL"),
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
        if provider is not None:
            title += provider_extras_text(provider)
        self.query_one("#keys-title", Label).update(title)
        now = self.services.now()
        self.query_one("#keys", LiveTable).replace_rows(
            [
                (
                    str(k.id),
                    [
                        str(k.id),
                        k.hint,
                        status_cell(key_state(k)),
                        k.failure_reason,
                        history_moment(k.last_failed_at, now),
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
            Text(visible(describe_key(*selected, self.services.now()))) if selected else ""
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
            extras = ProviderExtras(v["allowed_fields"], v["responses_api"])
            add = self.services.add_provider
            await self.services.run(add, v["name"], v["kind"], v["base_url"], v["key"], extras)
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
                    *extras_fields(None),
                ],
                submit,
                submit_label="Add",
                note="The name is the prefix of its model ids; an empty base URL means the "
                f"kind's own. {KEY_NOTE} {EXTRAS_NOTE}",
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

    def action_edit_provider(self) -> None:
        provider = self._need_provider()
        if provider is not None:
            self.start(self._edit_provider, provider)

    async def _edit_provider(self, provider: ProviderRow) -> None:
        async def submit(v: dict[str, str]) -> str:
            extras = ProviderExtras(v["allowed_fields"], v["responses_api"])
            update = self.services.update_provider
            await self.services.run(
                update, provider.name, v["kind"], v["base_url"], provider, extras
            )
            return provider.name

        done = await self.app.push_screen_wait(
            FormDialog(
                f"Edit provider {provider.name}",
                [
                    FormField("kind", "Kind", provider.kind, choices=PROVIDER_KINDS),
                    FormField("base_url", "Base URL", provider.base_url, placeholder="(default)"),
                    *extras_fields(provider),
                ],
                submit,
                submit_label="Save",
                note="An empty base URL means the kind's own. Keys stay as they are. "
                f"{EXTRAS_NOTE}",
            )
        )
        if done:
            self.notify(f"Provider {provider.name} saved")
            self.reload()

    def action_remove_provider(self) -> None:
        provider = self._need_provider()
        if provider is not None:
            self.start(self._remove_provider, provider)

    async def _remove_provider(self, provider: ProviderRow) -> None:
        if not await self.confirm(
            "Remove provider",
            f"Remove {provider.name} and its {len(provider.keys)} key(s)? "
            "(Refused while models use it.)",
            confirm_label="Remove",
        ):
            return
        await self.act(
            lambda: self.services.run(self.services.remove_provider, provider.name),
            f"Provider {provider.name} removed",
        )


EXTRAS_NOTE = "Billed fields (plugins, web_search, ...) pass only where allowed (blank: none)."


def extras_fields(provider: ProviderRow | None) -> list[FormField]:
    """What `--allow-field` and `--responses-api` set, filled with the provider's own."""
    fields = ", ".join(provider.allowed_fields) if provider else ""
    responses = "yes" if provider and provider.responses_api else "no"
    return [
        FormField("allowed_fields", "Allowed billed fields", fields, placeholder="e.g. plugins"),
        FormField("responses_api", "Serves the Responses API itself", responses,
                  choices=("no", "yes")),
    ]  # fmt: skip


def provider_extras_text(provider: ProviderRow) -> str:
    """' · allows plugins, route · Responses API', or '' for a provider with neither."""
    text = f" · allows {', '.join(provider.allowed_fields)}" if provider.allowed_fields else ""
    return text + (" · Responses API" if provider.responses_api else "")
