"""A failing provider key the operator has dealt with (rotated out) no longer raises the
failing-keys alarm on the dashboard and the providers table: only keys still in rotation count."""

from __future__ import annotations

import pytest

from admin_tui.app import create_admin_app
from codelace_box.catalog.providers import add_provider, provider_keys
from codelace_box.db.core import utcnow
from codelace_box.db.models import ProviderKey
from tests.admin.pilot import (
    SECRET,
    AdminEnv,
    column,
    fill,
    rendered,
    screen_name,
    text_of,
    until,
)
from tests.admin.test_dashboard import figures_line

pytestmark = pytest.mark.timeout(60)


def failing_figure(pilot) -> str:  # type: ignore[no-untyped-def]
    """The failing-keys figure of the dashboard ('' until the figures are shown)."""
    text = rendered(pilot, "#figures")
    return figures_line(text, "Errors")[-1] if "Errors" in text else ""


async def test_a_rotated_out_failing_key_no_longer_counts_as_failing(admin_env: AdminEnv) -> None:
    provider = add_provider("openai", "openai", SECRET, "sk-proj-failing-key-00001111")
    ProviderKey.update(failing=True, failure_reason="HTTP 401", last_failed_at=utcnow()).execute()
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: failing_figure(pilot) == "1", "the alarm")
        await pilot.press("f4")
        await until(pilot, lambda: column(pilot, "#keys", 2) == ["failing"], "the failing key")
        assert column(pilot, "#providers", 5) == ["1"]

        await pilot.press("tab", "o")
        await until(pilot, lambda: screen_name(pilot) == "FormDialog", "the rotate form")
        await fill(pilot, "key", "sk-proj-fresh-key-00002222")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: column(pilot, "#keys", 2) == ["off", "in use"], "rotated")
        await until(pilot, lambda: column(pilot, "#providers", 5) == ["0"], "no failing key")

        await pilot.press("f1")
        await until(pilot, lambda: screen_name(pilot) == "DashboardScreen", "the dashboard")
        await until(pilot, lambda: failing_figure(pilot) == "0", "the alarm cleared")
    assert [bool(k.enabled) for k in provider_keys(provider.id)] == [False, True]


async def test_a_failure_reason_that_echoes_the_key_shows_it_masked(admin_env: AdminEnv) -> None:
    """An upstream may echo the refused key in its 401 (the gateway keeps that text as the
    reason): the dashboard still never shows the key, only its masked hint."""
    key = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"  # no sk- prefix for a pattern to catch
    add_provider("together", "openai", SECRET, key)
    reason = f"HTTP 401: invalid api key {key} for this account"
    ProviderKey.update(failing=True, failure_reason=reason, last_failed_at=utcnow()).execute()
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=(120, 24)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: column(pilot, "#keys", 2) == ["failing"], "the failing key")
        assert column(pilot, "#keys", 3) == ["HTTP 401: invalid api key 0f1…e1f0 for this account"]
        await pilot.press("tab", "x")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the question")
        assert "0f1…e1f0" in text_of(pilot, "#confirm-message")
        assert key not in app.export_screenshot()
