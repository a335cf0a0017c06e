"""A key the gateway parked (refused on calls though its probe works: gateway/blind_keys.py)
shows as `parked` on the providers screen, with the reason saying how to put it back, not as
an ordinary failing key that a probe would bring back by itself."""

from __future__ import annotations

import pytest

from admin_tui.app import create_admin_app
from codelace_box.catalog.keyprobe import parked_reason
from codelace_box.catalog.providers import add_provider
from codelace_box.db.core import utcnow
from codelace_box.db.models import ProviderKey
from tests.admin.pilot import SECRET, AdminEnv, column, text_of, until

pytestmark = pytest.mark.timeout(60)


async def test_a_parked_key_shows_as_parked_with_what_brings_it_back(admin_env: AdminEnv) -> None:
    add_provider("openai", "openai", SECRET, "sk-proj-parked-key-00001111")
    reason = parked_reason("HTTP 403: Key answered 403.", "openai", 1)
    ProviderKey.update(
        failing=True, parked=True, failure_reason=reason, last_failed_at=utcnow()
    ).execute()
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=(240, 40)) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: column(pilot, "#keys", 2) == ["parked"], "the parked key")
        await pilot.press("tab")
        await until(pilot, lambda: "parked since" in text_of(pilot, "#key-check"), "the reason")
        shown = text_of(pilot, "#key-check").replace("\n", " ")
    assert "providers key-enable openai 1" in shown, shown
