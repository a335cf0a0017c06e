"""Snapshots of the key screens at 80x24 on fixed data at a frozen moment, and a scan proving
no snapshot holds a secret (provider keys appear only as their hint, API keys as a prefix)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from admin_tui.app import AdminApp, create_admin_app
from codelace_box.accounts.keys import create_key
from codelace_box.accounts.users import create_user, set_user_status
from codelace_box.billing.credits import adjust_balance
from codelace_box.catalog.models import set_model
from codelace_box.catalog.providers import add_provider, add_provider_key
from codelace_box.db.models import ApiKey, LedgerEntry, Payment, ProviderKey, User
from tests.admin.pilot import (
    SECRET,
    AdminEnv,
    add_usage,
    column,
    fill,
    make_env,
    open_form,
    text_of,
    until,
)

pytestmark = pytest.mark.timeout(60)
NOW = datetime(2026, 3, 1, 12, 30, 15)
T0 = datetime(2026, 2, 1, 9, 0, 0)
PROVIDER_KEYS = (
    "sk-proj-snapshot-openai-key-77aa88bb99cc",
    "sk-ant-api03-snapshot-key-one-1111aaaa",
    "sk-ant-api03-snapshot-key-two-2222bbbb",
)
SNAPSHOTS = Path(__file__).parent / "__snapshots__"
SnapCompare = Callable[..., bool]


def seed_fixed() -> list[str]:
    """Users, keys, ledger, payments, requests, providers and models, all at fixed moments;
    returns the full API keys minted (which must never show)."""
    alice, bob = seed_accounts()
    full_keys = seed_api_keys(alice)
    seed_traffic(alice, bob)
    seed_catalog()
    return full_keys


def seed_accounts() -> tuple[int, int]:
    alice = create_user("alice@example.com").id
    bob = create_user("bob@corp.example").id
    create_user("carol@example.com", created_by_admin=True)
    set_user_status("bob@corp.example", "disabled")
    adjust_balance("alice@example.com", "50", "welcome credit")
    adjust_balance("alice@example.com", "-7.5", "refund of a duplicate top-up")
    adjust_balance("bob@corp.example", "3", "trial extension")
    for model in (User, LedgerEntry):
        model.update(created_at=T0).execute()
    for user in User.select().order_by(User.id):  # snapshots need fixed ids (user detail)
        User.update(uuid=f"{user.id:08x}-0000-4000-9000-{user.id:012x}").where(
            User.id == user.id
        ).execute()
    Payment.update(created_at=T0, completed_at=T0).execute()
    return alice, bob


def seed_api_keys(user_id: int) -> list[str]:
    full_keys = []
    for n, (name, prefix) in enumerate([("laptop", "cl_Ab12"), ("ci", "cl_Zz99")]):
        minted = create_key(user_id, name)
        full_keys.append(minted.full_key)
        fixed_uuid = f"{n + 1:08x}-0000-4000-8000-{n + 1:012x}"  # snapshots need fixed ids
        ApiKey.update(key_prefix=prefix, uuid=fixed_uuid, created_at=T0 + timedelta(days=n)).where(
            ApiKey.id == minted.key.id
        ).execute()
    ApiKey.update(last_used_at=NOW - timedelta(minutes=3)).where(ApiKey.name == "laptop").execute()
    return full_keys


def seed_traffic(alice: int, bob: int) -> None:
    Payment.create(
        user=alice,
        amount_nanos=25 * 10**9,
        kind="topup",
        status="completed",
        created_at=NOW - timedelta(minutes=40),
        completed_at=NOW - timedelta(minutes=39),
    )
    Payment.create(
        user=bob,
        amount_nanos=10 * 10**9,
        kind="topup",
        status="pending",
        created_at=NOW - timedelta(minutes=5),
    )
    for i in range(24):
        failed = i % 7 == 3
        add_usage(
            alice if i % 3 else bob,
            NOW - timedelta(minutes=i * 2.5 + 0.2),
            request_id=f"req-{i}",
            tokens=(800 + 10 * i, 300),
            cost_nanos=5_000_000 + i,
            status="error" if failed else "ok",
            error_code="upstream_error" if failed else None,
            model="anthropic/claude-opus-4.6" if i % 2 else "openai/gpt-5.4",
        )


def seed_catalog() -> None:
    add_provider("openai", "openai", SECRET, PROVIDER_KEYS[0])
    add_provider("anthropic", "anthropic", SECRET, PROVIDER_KEYS[1])
    add_provider_key("anthropic", SECRET, PROVIDER_KEYS[2])
    ProviderKey.update(
        failing=True,
        failure_reason="HTTP 401: invalid x-api-key",
        last_failed_at=NOW - timedelta(minutes=12),
    ).where(ProviderKey.key_hint == "sk-…bbbb").execute()
    ProviderKey.update(created_at=T0).execute()
    set_model("openai/gpt-5.4", "2.5", "10", max_output_tokens=16000)
    set_model("openai/gpt-5.4-mini", "0.25", "2")
    set_model("anthropic/claude-opus-4.6", "15", "75", upstream_model="claude-opus-4-6")


@pytest.fixture
def snap_app(tmp_path: Path) -> AdminApp:
    env: AdminEnv = make_env(tmp_path)
    seed_fixed()
    return create_admin_app(env.config, clock=lambda: NOW)


def still(pilot: Pilot[Any]) -> None:
    """No blinking cursor in a snapshot."""
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False


def test_dashboard(snap_app: AdminApp, snap_compare: SnapCompare) -> None:
    async def loaded(pilot: Pilot[Any]) -> None:
        await until(pilot, lambda: len(column(pilot, "#recent")) == 8, "the dashboard data")
        await until(pilot, lambda: "total 24" in text_of(pilot, "#rpm-caption"), "the chart")

    assert snap_compare(snap_app, terminal_size=(80, 24), run_before=loaded)


def test_users(snap_app: AdminApp, snap_compare: SnapCompare) -> None:
    async def loaded(pilot: Pilot[Any]) -> None:
        await pilot.press("f2")
        await until(pilot, lambda: len(column(pilot, "#users")) == 3, "the users")
        still(pilot)

    assert snap_compare(snap_app, terminal_size=(80, 24), run_before=loaded)


def test_user_detail(snap_app: AdminApp, snap_compare: SnapCompare) -> None:
    async def loaded(pilot: Pilot[Any]) -> None:
        await pilot.press("f2")
        await until(pilot, lambda: len(column(pilot, "#users")) == 3, "the users")
        await pilot.press("enter")
        await until(pilot, lambda: column(pilot, "#keys", 2) == ["laptop", "ci"], "alice's keys")

    assert snap_compare(snap_app, terminal_size=(80, 24), run_before=loaded)


def test_providers_with_a_failing_key(snap_app: AdminApp, snap_compare: SnapCompare) -> None:
    async def loaded(pilot: Pilot[Any]) -> None:
        await pilot.press("f4")
        await until(pilot, lambda: len(column(pilot, "#providers")) == 2, "the providers")
        await until(pilot, lambda: len(column(pilot, "#keys")) == 2, "anthropic's keys")

    assert snap_compare(snap_app, terminal_size=(80, 24), run_before=loaded)


def test_model_form_with_a_bad_price(snap_app: AdminApp, snap_compare: SnapCompare) -> None:
    async def loaded(pilot: Pilot[Any]) -> None:
        await pilot.press("f3")
        await until(pilot, lambda: len(column(pilot, "#models")) == 3, "the catalog")
        await open_form(pilot, "n", "the add form")
        still(pilot)
        await fill(pilot, "model_id", "openai/gpt-5.4-nano")
        await fill(pilot, "input_per_1m", "cheap")
        await fill(pilot, "output_per_1m", "0.4")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "input price" in text_of(pilot, "#form-error"), "the error")

    assert snap_compare(snap_app, terminal_size=(80, 24), run_before=loaded)


def test_provider_form_masks_the_key(snap_app: AdminApp, snap_compare: SnapCompare) -> None:
    async def loaded(pilot: Pilot[Any]) -> None:
        await pilot.press("f4")
        await until(pilot, lambda: len(column(pilot, "#providers")) == 2, "the providers")
        await open_form(pilot, "n", "the add form")
        still(pilot)
        await fill(pilot, "name", "groq")
        await fill(pilot, "base_url", "https://api.groq.com/openai/v1")
        await fill(pilot, "key", PROVIDER_KEYS[0])

    assert snap_compare(snap_app, terminal_size=(80, 24), run_before=loaded)


def test_snapshots_hold_no_secret(tmp_path: Path) -> None:
    svgs = sorted(SNAPSHOTS.rglob("*.svg"))
    assert len(svgs) >= 6, f"expected the snapshots under {SNAPSHOTS}"
    minted = re.compile(r"cl_[A-Za-z0-9]{32,}")
    for svg in svgs:
        text = svg.read_text()
        for secret in (*PROVIDER_KEYS, SECRET):
            for piece in (secret, secret[:16], secret[-12:]):
                assert piece not in text, f"{svg.name} shows part of a secret"
        assert not minted.search(text), f"{svg.name} shows a full API key"
