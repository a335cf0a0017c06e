"""A provider key already in a provider's rotation is refused when added again (the key form,
the rotate form, `providers key-add`): two rows of the same key showed the same hint, and
rotating or removing one of them (a leaked key) left its twin in rotation, calls still sent
with it; a refused key cost a second upstream call and counted twice as failing."""

from __future__ import annotations

import pytest

from admin_tui.app import create_admin_app
from codelace_box.audit import list_entries
from codelace_box.catalog.providers import add_provider, get_provider, provider_keys
from tests.admin.pilot import SECRET, AdminEnv, column, fill, open_form, screen_name, text_of, until

pytestmark = pytest.mark.timeout(60)
SIZE = (100, 30)
KEY = "sk-proj-twice-pasted-key-0123456789ab"


async def test_a_key_already_in_rotation_is_refused_and_nothing_is_written(
    admin_env: AdminEnv,
) -> None:
    add_provider("openai", "openai", SECRET, KEY)
    add_provider("other", "openai", SECRET, KEY)  # another provider may hold the same key
    entries = len(list_entries(limit=1000))
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: column(pilot, "#keys", 1) == ["sk-…89ab"], "the first key")

        await open_form(pilot, "k", "the key form")
        await fill(pilot, "key", f" {KEY} ")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "already" in text_of(pilot, "#form-error"), "the refusal")
        said = text_of(pilot, "#form-error")
        assert "key 1 (sk-…89ab)" in said and KEY not in said
        await pilot.press("escape")

        await pilot.press("tab")  # the keys table: rotate the key into itself
        await open_form(pilot, "o", "the rotate form")
        await fill(pilot, "key", KEY)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the question")
        await pilot.press("y")
        await until(pilot, lambda: "already" in text_of(pilot, "#form-error"), "the refusal")

    assert len(provider_keys(get_provider("openai").id)) == 1
    assert len(list_entries(limit=1000)) == entries
