"""A provider key is any printable ASCII, square brackets included, and its masked hint keeps
its last four characters: a hint such as 'sk-…[/b]' is text on every line of the providers
screen (the rotate form's note, the test line, the probe of a failing key), never markup that
fails to parse (which ended the whole dashboard on the rotate form)."""

from __future__ import annotations

import pytest

from admin_tui.app import create_admin_app
from codelace_box.catalog.providers import add_provider, get_provider, provider_keys
from codelace_box.db.core import utcnow
from codelace_box.db.models import ProviderKey
from tests.admin.pilot import (
    SECRET,
    AdminEnv,
    column,
    notifications,
    open_form,
    screen_name,
    text_of,
    until,
)
from tests.fakes.models_upstream import FakeModelsUpstream

pytestmark = pytest.mark.timeout(60)
KEY = "sk-proj-bracketed-key-0000[/b]"
HINT = "sk-…[/b]"


async def test_a_key_hint_with_brackets_is_shown_as_text_everywhere(admin_env: AdminEnv) -> None:
    upstream = FakeModelsUpstream("openai", {KEY}).start()
    try:
        add_provider("openai", "openai", SECRET, KEY, upstream.base_url)
        failed = {"failing": True, "failure_reason": "HTTP 401", "last_failed_at": utcnow()}
        ProviderKey.update(**failed).execute()
        app = create_admin_app(admin_env.config)
        async with app.run_test(size=(100, 30), notifications=True) as pilot:
            await pilot.press("f4")
            await until(pilot, lambda: column(pilot, "#keys", 1) == [HINT], "the masked key")
            await pilot.press("tab")

            await open_form(pilot, "o", "the rotate form")
            assert f"{HINT} leaves it" in text_of(pilot, ".dialog-note")
            await pilot.press("escape")
            await until(pilot, lambda: screen_name(pilot) == "ProvidersScreen", "the form gone")

            await pilot.press("x")  # a failing key: asked, probed, then back in rotation
            await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the question")
            await pilot.press("y")
            await until(pilot, lambda: column(pilot, "#keys", 2) == ["in use"], "back in rotation")

            await pilot.press("t")
            await until(pilot, lambda: ": OK:" in text_of(pilot, "#key-check"), "the key tested")
            assert f"Key {HINT} of openai: OK" in text_of(pilot, "#key-check")
            assert not [n for n in notifications(pilot) if "Markup" in n]
    finally:
        upstream.stop()
    (key,) = provider_keys(get_provider("openai").id)
    assert key.enabled and not key.failing
