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
from codelace_box.accounts.keys import create_key
from codelace_box.accounts.users import create_user, get_user
from codelace_box.db.models import ApiKey
from codelace_box.gateway.catalog import add_provider, get_model, set_model
from tests.admin.pilot import SECRET, AdminEnv, column, fill, screen_name, until

pytestmark = pytest.mark.timeout(90)
SIZE = (100, 30)
WITHIN_SEC = 1.0


async def seen_within(
    what: str, probe: Callable[[], Awaitable[bool]], pilot: Pilot[Any], since: float
) -> float:
    """Seconds from `since` (the moment the change was committed) until the server shows it."""
    while not await probe():
        elapsed = time.monotonic() - since
        assert elapsed < WITHIN_SEC, f"the server still ignores {what} after {elapsed:.2f} s"
        await pilot.pause(0.02)
    return time.monotonic() - since


async def test_changes_made_in_the_ui_take_effect_on_a_running_server(
    admin_env: AdminEnv, start_server: Callable[..., Any]
) -> None:
    alice = create_user("alice@example.com")
    key = create_key(alice.id, "laptop")
    bob = create_user("bob@example.com")
    bob_key = create_key(bob.id, "ci")
    add_provider("openai", "openai", SECRET, "sk-live-server-test-000000000001")
    set_model("openai/gpt-5.4", "2.5", "10")
    server = start_server(admin_env.path)

    async with (
        httpx.AsyncClient(base_url=server.base_url, timeout=5) as http,
        create_admin_app(admin_env.config).run_test(size=SIZE) as pilot,
    ):

        async def me(full_key: str) -> int:
            response = await http.get(
                "/api/v1/auth/me", headers={"Authorization": f"Bearer {full_key}"}
            )
            return response.status_code

        assert await me(key.full_key) == 200 and await me(bob_key.full_key) == 200

        # revoke alice's key from her detail screen
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users")[:1] == ["alice@example.com"], "alice")
        await pilot.press("enter")
        await until(pilot, lambda: column(pilot, "#keys", 2) == ["laptop"], "alice's key")
        await pilot.press("k")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: ApiKey.get_by_id(key.key.id).revoked_at, "the revocation")
        committed = time.monotonic()

        async def revoked() -> bool:
            return await me(key.full_key) == 401

        await seen_within("the revoked key", revoked, pilot, committed)
        await pilot.press("escape")

        # disable bob
        await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the users table")
        await pilot.press("down", "x")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: get_user("bob@example.com").status == "disabled", "disabled")
        committed = time.monotonic()

        async def disabled() -> bool:
            return await me(bob_key.full_key) == 403

        await seen_within("the disabled account", disabled, pilot, committed)

        # new prices, then the model disabled
        await pilot.press("f3")
        await until(pilot, lambda: column(pilot, "#models") == ["openai/gpt-5.4"], "the model")
        await pilot.press("e")
        await until(pilot, lambda: screen_name(pilot) == "FormDialog", "the edit form")
        await fill(pilot, "input_per_1m", "3")
        await pilot.press("ctrl+s")
        await until(
            pilot,
            lambda: get_model("openai/gpt-5.4").input_per_1m_nanos == 3 * 10**9,
            "the new price",
        )
        committed = time.monotonic()

        async def repriced() -> bool:
            prices = (await http.get("/api/v1/public/pricing")).json()
            return bool(
                prices == [{"model": "openai/gpt-5.4", "input_per_1m": 3, "output_per_1m": 10}]
            )

        await seen_within("the new price", repriced, pilot, committed)

        await until(pilot, lambda: screen_name(pilot) == "ModelsScreen", "the models table")
        await pilot.press("t")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: not get_model("openai/gpt-5.4").enabled, "disabled model")
        committed = time.monotonic()

        async def gone() -> bool:
            return (await http.get("/v1/models")).json()["data"] == []

        await seen_within("the disabled model", gone, pilot, committed)
