"""A provider turned off keeps its models from being served and takes its keys out of use:
the Models screen's On column said "yes" for such a model (`models list` says "True (provider
off)"), and F1 counted the failing keys of such a provider as failing provider keys."""

from __future__ import annotations

import pytest

from admin_tui.app import create_admin_app
from codelace_box.catalog.models import set_model
from codelace_box.catalog.providers import add_provider, set_provider_enabled
from codelace_box.db.core import utcnow
from codelace_box.db.models import ProviderKey
from tests.admin.pilot import SECRET, AdminEnv, column, text_of, until
from tests.admin.test_failing_keys import failing_figure
from tests.admin.test_models import open_models

pytestmark = pytest.mark.timeout(60)
SIZE = (120, 30)


async def test_a_model_of_a_provider_turned_off_is_not_said_on(admin_env: AdminEnv) -> None:
    add_provider("openai", "openai", SECRET, "sk-admin-test-0000000000001")
    add_provider("anth", "anthropic", SECRET, "sk-ant-admin-test-000000002")
    set_model("openai/gpt-5.4", "2.5", "10")
    set_model("anth/claude-opus-4.6", "15", "75")
    set_provider_enabled("anth", False)
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await open_models(pilot)
        await until(pilot, lambda: len(column(pilot, "#models")) == 2, "both models")
        on = dict(zip(column(pilot, "#models"), column(pilot, "#models", 6), strict=True))
        assert on == {"anth/claude-opus-4.6": "no (provider off)", "openai/gpt-5.4": "yes"}
        await until(pilot, lambda: "anth/" in text_of(pilot, "#model-detail"), "its line")
        assert "provider anth is off" in text_of(pilot, "#model-detail")


async def test_failing_keys_of_a_provider_turned_off_are_not_counted(
    admin_env: AdminEnv,
) -> None:
    add_provider("openai", "openai", SECRET, "sk-admin-test-0000000000001")
    add_provider("anth", "anthropic", SECRET, "sk-ant-admin-test-000000002")
    ProviderKey.update(failing=True, failure_reason="HTTP 401", last_failed_at=utcnow()).execute()
    set_provider_enabled("anth", False)
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await until(pilot, lambda: failing_figure(pilot) != "", "the figures")
        assert failing_figure(pilot) == "1"  # openai's; anth's is off with its provider
