"""F6 Audit at 80x24 with an entry taller than the screen (a key's allowed models changed: both
lists in full): the entry's detail under the log took every line, the log itself was squeezed
to nothing (not a row of it on screen). The detail keeps to part of the screen and scrolls
(Tab into it, then the arrows or End)."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from admin_tui.app import AdminApp, create_admin_app
from admin_tui.services import KeyLimitsForm
from codelace_box.accounts.users import create_user
from codelace_box.catalog.models import set_model
from codelace_box.catalog.providers import add_provider
from tests.admin.pilot import AdminEnv, column, screen_name, until

pytestmark = pytest.mark.timeout(60)
NARROW = (80, 24)
MODELS = [f"acme/vendor-{i:03d}/a-rather-long-model-name-{i:03d}-instruct" for i in range(40)]


def on_screen(pilot: Pilot[Any]) -> str:
    """What the terminal shows now (the screenshot's text, its blanks as blanks)."""
    return pilot.app.export_screenshot().replace("&#160;", " ")


def alice_and_the_models() -> int:
    """The 40 models of a provider and an account, written before the dashboard starts (its
    reads would meet these writes: database is locked); the account's id."""
    add_provider("acme", "openai", "secret", "sk-acme-key-0001", "http://127.0.0.1:9/v1")
    for model in MODELS:
        set_model(model, "1", "2")
    return int(create_user("alice@example.com").id)


async def a_key_for_every_model(app: AdminApp, user_id: int) -> Any:
    """A key made in the dashboard, allowed every one of the models."""
    every = KeyLimitsForm("", "never", "", ", ".join(MODELS))
    _, key = await app.services.run(app.services.create_key, user_id, "ci", "yes", every)
    return key


async def test_a_tall_audit_entry_leaves_the_log_on_screen(admin_env: AdminEnv) -> None:
    alice = alice_and_the_models()
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=NARROW) as pilot:
        services, key = app.services, await a_key_for_every_model(app, alice)
        fewer = KeyLimitsForm("5", "never", "", ", ".join(MODELS[:30]), "yes", "ci")
        await services.run(services.set_key_limits, key.id, fewer)
        await pilot.press("f6")
        await until(pilot, lambda: screen_name(pilot) == "AuditScreen", "the audit screen")
        await until(pilot, lambda: len(column(pilot, "#audit")) == 2, "both entries")
        await until(pilot, lambda: "vendor-000" in on_screen(pilot), "the newest in full")
        log = pilot.app.screen.query_one("#audit")
        assert log.content_region.height >= 3, log.content_region  # header and both rows
        assert "keys create" in on_screen(pilot)  # the older entry's row is on screen

        assert "vendor-029" not in on_screen(pilot)  # the end of the entry: further down
        await pilot.press("tab", "end")
        await until(pilot, lambda: "vendor-029" in on_screen(pilot), "its end")


async def test_another_tall_entry_is_shown_from_its_first_line(admin_env: AdminEnv) -> None:
    """The detail scrolled to the end of one tall entry, the next one highlighted was shown at
    the same depth: a run of model ids, its head (when, who, the command and the key) above the
    edge, nothing saying which entry or which list the lines were."""
    alice = alice_and_the_models()
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=NARROW) as pilot:
        services, key = app.services, await a_key_for_every_model(app, alice)
        for kept in (30, 20):  # two tall entries
            fewer = KeyLimitsForm("5", "never", "", ", ".join(MODELS[:kept]), "yes", "ci")
            await services.run(services.set_key_limits, key.id, fewer)
        await pilot.press("f6")
        await until(pilot, lambda: len(column(pilot, "#audit")) == 3, "the entries")
        await until(pilot, lambda: " UTC · " in on_screen(pilot), "the newest's head")
        await pilot.press("tab", "end")
        await until(pilot, lambda: " UTC · " not in on_screen(pilot), "its end")

        await pilot.press("shift+tab", "down")  # back to the log, the entry before
        await until(pilot, lambda: " UTC · " in on_screen(pilot), "its head")
        await pilot.press("tab", "end")
        await until(pilot, lambda: " UTC · " not in on_screen(pilot), "its end")
        await pilot.app.screen.run_action("reload_audit")  # as every 5 s: the same entry
        await pilot.pause(0.5)
        assert " UTC · " not in on_screen(pilot)  # still where the operator scrolled to
