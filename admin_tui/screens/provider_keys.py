"""The key actions of the providers screen: add, rotate, remove, disable/enable (a failing key
is probed first and goes back only if its upstream accepts it), test against the upstream."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import Static

from admin_tui.dialogs.form import Abandon, FormDialog, FormField
from admin_tui.screens.base import describe
from admin_tui.screens.formatting import history_moment
from admin_tui.services import InvalidRequest, ProviderKeyRow, ProviderRow
from admin_tui.widgets.live_table import visible

if TYPE_CHECKING:
    from admin_tui.screens.base import AdminScreen as _Host
else:
    _Host = object

KEY_NOTE = "Keys are stored encrypted and only ever shown masked."


class ProviderKeyActions(_Host):
    """Mixin for the providers screen, which says what is selected."""

    def _need_provider(self) -> ProviderRow | None:
        raise NotImplementedError

    def _need_key(self) -> tuple[ProviderRow, ProviderKeyRow] | None:
        raise NotImplementedError

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
            return await self.services.run(self.services.rotate_key, provider.name, old, v["key"])

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
        if key.failing and not await self._probe_passes(provider, key):
            return
        await self.act(
            lambda: self.services.run(self.services.set_key_enabled, provider.name, key, enable),
            f"Key {key.hint} {'back in rotation' if enable else 'disabled'}",
        )

    async def _probe_passes(self, provider: ProviderRow, key: ProviderKeyRow) -> bool:
        """A failing key goes back only if its upstream accepts it now (as `key-enable`)."""
        line = self.query_one("#key-check", Static)
        line.update(Text(f"Testing key {key.hint} of {provider.name} before putting it back…"))
        try:
            result = await self.services.test_key(key.id)
        except Exception as exc:
            line.update(Text(visible(f"Key {key.hint}: {describe(exc)}")))
            return False
        if not result.ok:
            line.update(Text(visible(f"Key {key.hint} stays out of rotation: {result.message}")))
            self.notify(result.message, title=f"Key {key.hint} still fails", severity="error")
        return result.ok

    async def _confirm_toggle(self, provider: ProviderRow, key: ProviderKeyRow) -> bool:
        """Enabling a key that is off asks nothing; a failing or a working key, yes."""
        if not key.enabled:
            return True
        if key.failing:
            return await self.confirm(
                "Failing key",
                f"Key {key.hint} of {provider.name} failed: "
                f"{key.failure_reason or 'no reason recorded'}\n"
                "Test it and put it back in rotation if it works?",
                confirm_label="Put back",
            )
        return await self.confirm(
            "Disable key",
            f"Take key {key.hint} of {provider.name} out of rotation?",
            confirm_label="Disable",
        )

    def action_remove_key(self) -> None:
        selected = self._need_key()
        if selected is not None:
            self.start(self._remove_key, *selected)

    async def _remove_key(self, provider: ProviderRow, key: ProviderKeyRow) -> None:
        others = [k for k in provider.keys if k.id != key.id and k.enabled and not k.failing]
        warning = (
            "" if others else f"\nIt is the last working key: {provider.name}'s models answer 503."
        )
        if not await self.confirm(
            "Remove key",
            f"Remove key {key.hint} of {provider.name}? It cannot be brought back.{warning}",
            confirm_label="Remove",
        ):
            return
        await self.act(
            lambda: self.services.run(self.services.remove_provider_key, provider.name, key),
            f"Key {key.hint} removed",
        )

    def action_test_key(self) -> None:
        selected = self._need_key()
        if selected is not None:
            self.start(self._test_key, *selected)

    async def _test_key(self, provider: ProviderRow, key: ProviderKeyRow) -> None:
        line = self.query_one("#key-check", Static)
        line.update(Text(f"Testing key {key.hint} of {provider.name}…"))
        try:
            result = await self.services.test_key(key.id)
        except Exception as exc:
            line.update(Text(visible(f"Key {key.hint}: {describe(exc)}")))
            return
        verdict = "OK" if result.ok else "FAILED"
        advice = " (x puts it back in rotation)" if result.ok and key.failing else ""
        said = f"Key {key.hint} of {provider.name}: {verdict}: {result.message}{advice}"
        line.update(Text(visible(said)))
        self.notify(
            result.message,
            title=f"Key {key.hint}",
            severity="information" if result.ok else "error",
        )


def key_state(key: ProviderKeyRow) -> str:
    """One word for a key: off (disabled), failing (out of rotation until fixed), parked (out
    of rotation until the operator puts it back: its probe works, its calls are refused),
    in use."""
    if not key.enabled:
        return "off"
    if key.failing:
        return "parked" if key.parked else "failing"
    return "in use"


def describe_key(provider: ProviderRow, key: ProviderKeyRow, now: datetime) -> str:
    """What the operator should know about a key, the upstream's whole reason included."""
    head = f"Key {key.hint} of {provider.name}: "
    if not key.enabled:
        return head + "off (x puts it back in rotation)."
    if key.failing:
        return (
            head + f"{key_state(key)} since {history_moment(key.last_failed_at, now)} UTC: "
            f"{key.failure_reason or 'no reason recorded'} (t tests it, x puts it back)."
        )
    return head + "in use (t tests it, x takes it out, o rotates it)."
