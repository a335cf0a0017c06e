"""Providers screen: add a provider and keys (stored encrypted, shown masked), rotate,
disable/enable, test a key against a real fake upstream, see failing keys flagged."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from textual.pilot import Pilot

from admin_tui.app import create_admin_app
from codelace_box.catalog.providers import add_provider, get_provider, provider_keys
from codelace_box.crypto import decrypt_secret
from codelace_box.db.core import utcnow
from codelace_box.db.models import Provider, ProviderKey
from tests.admin.pilot import (
    SECRET,
    AdminEnv,
    column,
    fill,
    open_form,
    rows,
    screen_name,
    text_of,
    until,
)
from tests.fakes.models_upstream import FakeModelsUpstream

pytestmark = pytest.mark.timeout(60)
SIZE = (100, 30)
GOOD_KEY = "sk-good-admin-test-key-9f8e7d6c5b4a"
NEW_KEY = "sk-new-admin-test-key-1a2b3c4d5e6f"
BAD_KEY = "sk-bad-admin-test-key-000011112222"


@pytest.fixture
def openai_upstream() -> Iterator[FakeModelsUpstream]:
    fake = FakeModelsUpstream("openai", {GOOD_KEY, NEW_KEY}, echo_key=True).start()
    yield fake
    fake.stop()


async def open_providers(pilot: Pilot[None]) -> None:
    await pilot.press("f4")
    await until(pilot, lambda: screen_name(pilot) == "ProvidersScreen", "the providers screen")


def screen_svg(pilot: Pilot[None]) -> str:
    return pilot.app.export_screenshot()


async def test_add_a_provider_stores_the_key_encrypted_and_shows_it_masked(
    admin_env: AdminEnv,
) -> None:
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await open_providers(pilot)
        await open_form(pilot, "n", "the add form")
        await fill(pilot, "name", "openrouter")
        await fill(pilot, "base_url", "ftp://nowhere")
        await fill(pilot, "key", GOOD_KEY)
        assert GOOD_KEY not in screen_svg(pilot)  # a password field shows dots
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "must start with http" in text_of(pilot, "#form-error"), "URL")
        await fill(pilot, "base_url", "HTTPS://OpenRouter.AI/api/v1")  # case-insensitive
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ProvidersScreen", "the form to close")
        await until(pilot, lambda: column(pilot, "#providers") == ["openrouter"], "the row")
        await until(pilot, lambda: column(pilot, "#keys", 1) == ["sk-…5b4a"], "the masked key")
        assert rows(pilot, "#providers")[0][:5] == [
            "openrouter",
            "openai",
            "https://openrouter.ai/api/v1",
            "yes",
            "1",
        ]
        assert GOOD_KEY not in screen_svg(pilot)

        await pilot.press("n")  # the same name again
        await until(pilot, lambda: screen_name(pilot) == "FormDialog", "the add form")
        await fill(pilot, "name", "openrouter")
        await fill(pilot, "key", "sk-another-one-123456789")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "already exists" in text_of(pilot, "#form-error"), "dup")

    provider = get_provider("openrouter")
    (key,) = provider_keys(provider.id)
    assert key.key_hint == "sk-…5b4a"
    assert GOOD_KEY.encode() not in bytes(key.key_encrypted)
    assert decrypt_secret(SECRET, key.key_encrypted) == GOOD_KEY
    assert Provider.select().count() == 1


async def test_add_rotate_disable_and_enable_keys(admin_env: AdminEnv) -> None:
    add_provider("openai", "openai", SECRET, GOOD_KEY)
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await open_providers(pilot)
        await until(pilot, lambda: column(pilot, "#keys", 1) == ["sk-…5b4a"], "the first key")

        await open_form(pilot, "k", "the key form")
        await fill(pilot, "key", "   ")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "must not be empty" in text_of(pilot, "#form-error"), "empty")
        await fill(pilot, "key", BAD_KEY)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: len(column(pilot, "#keys")) == 2, "the second key")

        await pilot.press("tab")  # to the keys table, cursor on the first key
        await open_form(pilot, "o", "the rotate form")
        await fill(pilot, "key", NEW_KEY)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: len(column(pilot, "#keys")) == 3, "the new key")
        assert column(pilot, "#keys", 2) == ["off", "in use", "in use"]

        await pilot.press("down")  # the second key (BAD_KEY)
        await pilot.press("x")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        await pilot.press("y")
        await until(
            pilot, lambda: column(pilot, "#keys", 2) == ["off", "off", "in use"], "disabled"
        )
        await pilot.press("up")
        await pilot.press("x")  # enabling asks nothing
        await until(
            pilot, lambda: column(pilot, "#keys", 2) == ["in use", "off", "in use"], "enabled"
        )
        assert all(k not in screen_svg(pilot) for k in (GOOD_KEY, NEW_KEY, BAD_KEY))

    keys = provider_keys(get_provider("openai").id)
    assert [decrypt_secret(SECRET, k.key_encrypted) for k in keys] == [GOOD_KEY, BAD_KEY, NEW_KEY]
    assert [bool(k.enabled) for k in keys] == [True, False, True]


async def test_failing_keys_are_flagged_and_a_key_test_tells_the_truth(
    admin_env: AdminEnv, openai_upstream: FakeModelsUpstream
) -> None:
    provider = add_provider("openai", "openai", SECRET, GOOD_KEY, openai_upstream.base_url)
    with_bad = add_provider("other", "openai", SECRET, BAD_KEY, openai_upstream.base_url)
    ProviderKey.update(
        failing=True, failure_reason="HTTP 401: invalid key", last_failed_at=utcnow()
    ).where(ProviderKey.provider == with_bad.id).execute()  # as the gateway flags it
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await open_providers(pilot)
        await until(pilot, lambda: column(pilot, "#providers", 5) == ["0", "1"], "the flag")

        await pilot.press("t")  # openai's only key: good
        await until(pilot, lambda: ": OK:" in text_of(pilot, "#key-check"), "the test result")
        assert "the key works (2 models listed)" in text_of(pilot, "#key-check")

        await pilot.press("down")  # the provider with the failing key
        await until(pilot, lambda: column(pilot, "#keys", 2) == ["failing"], "the failing key")
        assert column(pilot, "#keys", 3) == ["HTTP 401: invalid key"]
        await pilot.press("t")
        await until(pilot, lambda: "FAILED" in text_of(pilot, "#key-check"), "the test result")
        result = text_of(pilot, "#key-check")
        assert "the upstream refused the key (401): Incorrect API key provided" in result
        assert BAD_KEY not in result and "sk-…2222" in result  # the echoed key is masked
        assert BAD_KEY not in screen_svg(pilot)

        openai_upstream.status_override = 503
        await pilot.press("up")
        await pilot.press("t")
        await until(pilot, lambda: "answered 503" in text_of(pilot, "#key-check"), "the 503")
    sent = [r["authorization"] for r in openai_upstream.requests]
    assert sent == [f"Bearer {GOOD_KEY}", f"Bearer {BAD_KEY}", f"Bearer {GOOD_KEY}"]
    assert provider.enabled


async def test_disable_and_enable_a_provider(admin_env: AdminEnv) -> None:
    add_provider("openai", "openai", SECRET, GOOD_KEY)
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await open_providers(pilot)
        await until(pilot, lambda: column(pilot, "#providers", 3) == ["yes"], "the provider")
        await pilot.press("e")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        await pilot.press("n")
        await until(pilot, lambda: screen_name(pilot) == "ProvidersScreen", "not confirmed")
        assert get_provider("openai").enabled
        await pilot.press("e")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: column(pilot, "#providers", 3) == ["no"], "disabled")
        assert not get_provider("openai").enabled
        await pilot.press("e")
        await until(pilot, lambda: column(pilot, "#providers", 3) == ["yes"], "enabled")
    assert get_provider("openai").enabled
