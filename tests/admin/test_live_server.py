"""What the operator changes in the dashboard reaches a RUNNING `codelace-box serve` (another
process on the same database) within a second: a revoked key, a disabled account, new prices
and a disabled model."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from textual.pilot import Pilot

from admin_tui.app import create_admin_app
from codelace_box.accounts.keys import NewKey, create_key
from codelace_box.accounts.users import create_user, get_user
from codelace_box.catalog.models import get_model, set_model
from codelace_box.catalog.providers import add_provider
from codelace_box.db.models import ApiKey
from tests.admin.pilot import SECRET, AdminEnv, column, fill, open_form, screen_name, until
from tests.support import TLS

pytestmark = pytest.mark.timeout(90)
WITHIN_SEC = 1.0
Probe = Callable[[], Awaitable[bool]]


async def seen_within(what: str, probe: Probe, pilot: Pilot[Any]) -> None:
    """The server shows the change (`probe()`) within a second of its commit (now): a probe
    counts from when it began (a loaded machine may bring an answer given in time late)."""
    committed = time.monotonic()
    while True:
        began = time.monotonic()
        if await probe():
            return
        elapsed = began - committed
        assert elapsed < WITHIN_SEC, f"the server still ignores {what} after {elapsed:.2f} s"
        await pilot.pause(0.02)


async def confirm(pilot: Pilot[Any], *keys: str) -> None:
    """Press keys that ask a question, and answer yes."""
    await pilot.press(*keys)
    await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
    await pilot.press("y")


async def revoke_first_key_of_first_user(pilot: Pilot[Any], key: NewKey) -> None:
    await pilot.press("f2")
    await until(pilot, lambda: column(pilot, "#users")[:1] == ["alice@example.com"], "alice")
    await pilot.press("enter")
    await until(pilot, lambda: column(pilot, "#keys", 2) == ["laptop"], "alice's key")
    await confirm(pilot, "k")
    await until(pilot, lambda: ApiKey.get_by_id(key.key.id).revoked_at, "the revocation")


async def disable_second_user(pilot: Pilot[Any]) -> None:
    await pilot.press("escape")
    await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the users table")
    await confirm(pilot, "down", "x")
    await until(pilot, lambda: get_user("bob@example.com").status == "disabled", "disabled")


async def set_input_price(pilot: Pilot[Any], price: str) -> None:
    await pilot.press("f3")
    await until(pilot, lambda: column(pilot, "#models") == ["openai/gpt-5.4"], "the model")
    await open_form(pilot, "e", "the edit form")
    await fill(pilot, "input_per_1m", price)
    await pilot.press("ctrl+s")
    await until(pilot, lambda: screen_name(pilot) == "ModelsScreen", "the models table")
    assert str(get_model("openai/gpt-5.4").input_per_1m_nanos) == price + "0" * 9


async def disable_model(pilot: Pilot[Any]) -> None:
    await confirm(pilot, "t")
    await until(pilot, lambda: not get_model("openai/gpt-5.4").enabled, "the disabled model")


async def test_changes_made_in_the_ui_take_effect_on_a_running_server(
    admin_env: AdminEnv, start_server: Callable[..., Any]
) -> None:
    alice_key = create_key(create_user("alice@example.com").id, "laptop")
    bob_key = create_key(create_user("bob@example.com").id, "ci")
    add_provider("openai", "openai", SECRET, "sk-live-server-test-000000000001")
    set_model("openai/gpt-5.4", "2.5", "10")
    server = start_server(admin_env.path)

    async with (
        httpx.AsyncClient(base_url=server.base_url, timeout=15, verify=TLS) as http,
        create_admin_app(admin_env.config).run_test(size=(100, 30)) as pilot,
    ):

        async def me_status(key: NewKey) -> int:
            headers = {"Authorization": f"Bearer {key.full_key}"}
            return (await http.get("/api/v1/auth/me", headers=headers)).status_code

        async def pricing() -> Any:
            return (await http.get("/api/v1/public/pricing")).json()

        async def models() -> Any:
            return (await http.get("/v1/models")).json()["data"]

        assert (await me_status(alice_key), await me_status(bob_key)) == (200, 200)

        await revoke_first_key_of_first_user(pilot, alice_key)
        await seen_within("the revoked key", lambda: _is(me_status(alice_key), 401), pilot)

        await disable_second_user(pilot)
        await seen_within("the disabled account", lambda: _is(me_status(bob_key), 403), pilot)

        await set_input_price(pilot, "3")
        new_prices = [{"model": "openai/gpt-5.4", "input_per_1m": 3, "output_per_1m": 10,
                       "cache_read_per_1m": 3, "cache_write_per_1m": 3,
                       "cache_write_1h_per_1m": 3}]  # fmt: skip
        await seen_within("the new price", lambda: _is(pricing(), new_prices), pilot)

        await disable_model(pilot)
        await seen_within("the disabled model", lambda: _is(models(), []), pilot)


async def _is(answer: Awaitable[Any], expected: Any) -> bool:
    return bool(await answer == expected)
