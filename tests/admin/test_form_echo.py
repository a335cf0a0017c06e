"""A form's refusal quoted back the whole of what was typed: a provider key pasted into a price,
a token cap, a model id, an alias, a key's cap, expiry or models, an amount or an email was
shown back in the error line (a screen share, a recording). Every form's refusal now names
the field and the rule, and quotes at most a short, masked start of a long value."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from admin_tui.app import create_admin_app
from codelace_box.accounts.users import create_user
from codelace_box.catalog.models import set_model
from codelace_box.catalog.providers import add_provider
from tests.admin.pilot import SECRET, AdminEnv, fill, open_form, screen_name, text_of, until
from tests.admin.test_limits import open_detail
from tests.admin.test_models import open_models

pytestmark = pytest.mark.timeout(90)
SIZE = (120, 34)
KEY = "sk-ant-api03-Q3xv9PastedInTheWrongField0123456789abcdEFGH"
LONG = "1234567890" * 500  # not a key, but 5,000 characters
SHORT = 40  # at most this much of a quoted value


def shows_no_key(shown: str) -> None:
    for piece in (KEY, KEY[:16], KEY[8:24], KEY[-12:]):
        assert piece not in shown, shown
    assert LONG[:SHORT] not in shown, shown


async def refusal(pilot: Pilot[Any], fields: dict[str, str], said: str) -> str:
    """Fill the open form, save it, and return its refusal (which must contain `said`)."""
    for name, value in fields.items():
        await fill(pilot, name, value)
    await pilot.press("ctrl+s")
    await until(pilot, lambda: said in text_of(pilot, "#form-error"), f"the refusal ({said})")
    return text_of(pilot, "#form-error")


MODEL_FIELDS = [
    ("model_id", KEY, "model id"),
    ("input_per_1m", KEY, "input price"),
    ("output_per_1m", LONG, "output price"),
    ("max_output_tokens", KEY, "max output tokens"),
    ("context_tokens", LONG + "x", "context tokens"),
    ("cache_read_per_1m", KEY, "cache read price"),
    ("provider", KEY, "provider"),
]


async def test_the_model_and_alias_forms_quote_no_key(admin_env: AdminEnv) -> None:
    add_provider("openai", "openai", SECRET, "sk-admin-test-0000000000001")
    set_model("openai/gpt-5.4", "2.5", "10")
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await open_models(pilot)
        await open_form(pilot, "n", "the add form")
        good = {"model_id": "openai/gpt-new", "input_per_1m": "1", "output_per_1m": "2"}
        for name, typed, said in MODEL_FIELDS:
            shown = await refusal(pilot, good | {name: typed}, said)
            shows_no_key(shown)
            await fill(pilot, name, good.get(name, ""))
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "ModelsScreen", "the form closed")
        await open_form(pilot, "a", "the alias form")
        shows_no_key(await refusal(pilot, {"alias": f"a/{KEY}"}, "alias"))


async def test_the_key_and_account_forms_quote_no_key(admin_env: AdminEnv) -> None:
    add_provider("openai", "openai", SECRET, "sk-admin-test-0000000000001")
    set_model("openai/gpt-5.4", "2.5", "10")
    create_user("alice@example.com")
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await open_detail(pilot, "alice@example.com")
        await open_form(pilot, "c", "the new key form")
        for name, said in (("limit_usd", "limit_usd"), ("expires", "expires_at")):
            shows_no_key(await refusal(pilot, {name: KEY}, said))
            await fill(pilot, name, "")
        shows_no_key(await refusal(pilot, {"models": f"openai/gpt-5.4, {KEY}"}, "allowed_models"))
        await fill(pilot, "models", "")
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "UserDetailScreen", "the form closed")
        await open_form(pilot, "a", "the adjust form")
        shows_no_key(await refusal(pilot, {"amount": KEY, "reason": "r"}, "amount"))
        await pilot.press("escape")
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the users table")
        await open_form(pilot, "n", "the new user form")
        shows_no_key(await refusal(pilot, {"email": KEY}, "email"))


async def test_a_long_unknown_model_id_is_still_named(admin_env: AdminEnv) -> None:
    """OpenRouter's ids share long starts and names like `DeepSeek-R1-Distill-Qwen-32B` read
    as key-like: cut to 20 characters ('openrouter/anthropic…') or to 3 ('dee…'), the refusal
    of a key's models no longer said which of the models typed is not in the catalog."""
    add_provider("openrouter", "openai", SECRET, "sk-admin-test-0000000000002")
    set_model("openrouter/anthropic/claude-sonnet-4.5", "3", "15")
    create_user("bob@example.com")
    known = "openrouter/anthropic/claude-sonnet-4.5"
    async with create_admin_app(admin_env.config).run_test(size=SIZE) as pilot:
        await open_detail(pilot, "bob@example.com")
        await open_form(pilot, "c", "the new key form")
        for unknown, told in (
            ("openrouter/anthropic/claude-opus-4.1", "opus-4.1"),
            ("deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", "-32B"),
        ):
            shown = await refusal(pilot, {"models": f"{known}, {unknown}"}, "allowed_models")
            assert told in shown and unknown[:12] in shown, shown
