"""What an operator meets at 80x24 and on a live box: tables that fit the terminal, a view
that holds still while rows arrive, day figures that never lag the hour, failing provider keys
explained in full, exact money after an adjustment, and text with square brackets shown as is."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Label, TabbedContent

from admin_tui.app import create_admin_app
from admin_tui.widgets.live_table import MIN_FLEX_WIDTH, LiveTable, fit_widths
from codelace_box.accounts.users import create_user
from codelace_box.billing.credits import adjust_balance
from codelace_box.catalog.models import set_model
from codelace_box.catalog.providers import add_provider, get_provider, provider_keys
from codelace_box.config import load_config
from codelace_box.db.core import utcnow
from codelace_box.db.models import ProviderKey
from tests.admin.pilot import (
    SECRET,
    AdminEnv,
    add_usage,
    column,
    fill,
    notifications,
    open_form,
    rendered,
    screen_name,
    sqlite_file_only,
    text_of,
    until,
)
from tests.admin.test_dashboard import figures_line
from tests.admin.test_palette import run_command
from tests.fakes.models_upstream import FakeModelsUpstream
from tests.support import base_sections, write_config

pytestmark = pytest.mark.timeout(60)
NARROW = (80, 24)
NOW = datetime(2026, 3, 1, 12, 30, 15)
LONG_EMAIL = "contractor.with.a.rather.long.name@external-partner-company.example"


def test_flex_columns_share_what_is_left_fairly() -> None:
    assert fit_widths([10, 40, 8, 30], [1, 3], 100) == [10, 40, 8, 30]  # all fits
    assert fit_widths([10, 40, 8, 30], [1, 3], 60) == [10, 21, 8, 21]
    assert fit_widths([10, 40, 8, 10], [1, 3], 50) == [10, 22, 8, 10]  # short one keeps all
    assert fit_widths([10, 40, 8], [1], 20) == [10, MIN_FLEX_WIDTH, 8]  # never below the min


def refresh(pilot: Pilot[None]) -> None:
    pilot.app.screen.reload()  # type: ignore[attr-defined]


def table(pilot: Pilot[None], selector: str) -> LiveTable:
    return pilot.app.screen.query_one(selector, LiveTable)


async def test_the_users_table_fits_80_columns_and_shrinks_back(admin_env: AdminEnv) -> None:
    create_user(LONG_EMAIL)
    create_user("al@example.com")
    async with create_admin_app(admin_env.config).run_test(size=NARROW) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the users screen")
        await until(pilot, lambda: len(column(pilot, "#users")) == 2, "both users")
        await pilot.pause(0.2)
        users = table(pilot, "#users")
        assert users.virtual_size.width <= users.size.width  # Status is on screen
        email_width = users.ordered_columns[0].width
        assert email_width < len(LONG_EMAIL)
        screen = pilot.app.export_screenshot()
        assert "contractor.with.a" in screen and LONG_EMAIL not in screen and "…" in screen

        await pilot.press("slash", *"al@")
        await until(pilot, lambda: column(pilot, "#users") == ["al@example.com"], "the filter")
        await pilot.pause(0.2)
        assert users.ordered_columns[0].width == len("al@example.com")


async def test_a_live_refresh_keeps_the_view_still(admin_env: AdminEnv) -> None:
    alice = create_user("alice@example.com").id
    start = utcnow() - timedelta(minutes=50)
    for i in range(60):
        add_usage(alice, start + timedelta(seconds=i), request_id=f"old-{i}")
    async with create_admin_app(admin_env.config).run_test(size=NARROW) as pilot:
        await pilot.press("f5")
        await until(pilot, lambda: len(column(pilot, "#requests")) == 60, "the requests")
        requests = table(pilot, "#requests")
        await pilot.press(*["down"] * 30)
        await pilot.pause(0.2)
        key, offset = requests.selected_key(), requests.cursor_row - requests.scroll_y
        add_usage(alice, utcnow(), request_id="new-1")
        refresh(pilot)  # what the 2-second timer does, without the wait
        await until(pilot, lambda: len(column(pilot, "#requests")) == 61, "the new request")
        await pilot.pause(0.2)
        assert requests.selected_key() == key  # the same request stays under the cursor
        assert requests.cursor_row - requests.scroll_y == offset  # at the same place on screen

        await pilot.press("ctrl+home")
        await pilot.pause(0.2)
        add_usage(alice, utcnow(), request_id="new-2")
        refresh(pilot)  # what the 2-second timer does, without the wait
        await until(pilot, lambda: len(column(pilot, "#requests")) == 62, "the newest request")
        await pilot.pause(0.2)
        assert requests.cursor_row == 0 and requests.scroll_y == 0  # on top, it follows the head


async def test_day_figures_never_lag_behind_the_hour(admin_env: AdminEnv) -> None:
    alice = create_user("alice@example.com").id
    bob = create_user("bob@example.com").id
    add_usage(alice, NOW - timedelta(hours=5), request_id="old")
    add_usage(alice, NOW - timedelta(minutes=5), request_id="r1")
    async with create_admin_app(admin_env.config, clock=lambda: NOW).run_test(size=NARROW) as p:
        await until(p, lambda: len(column(p, "#recent")) == 2, "the first figures")
        assert figures_line(rendered(p, "#figures"), "Requests")[1:3] == ["1", "2"]
        add_usage(bob, NOW - timedelta(minutes=1), request_id="r2")  # inside the 30 s cache
        await until(p, lambda: len(column(p, "#recent")) == 3, "the new request", timeout=15)
        await until(
            p,
            lambda: figures_line(rendered(p, "#figures"), "Requests")[1:3] == ["2", "3"],
            "the day figure to move with the hour",
            timeout=15,
        )
        assert figures_line(rendered(p, "#figures"), "Active users")[1:3] == ["2", "2"]


async def test_a_failing_key_is_explained_and_put_back_only_when_confirmed(
    admin_env: AdminEnv,
) -> None:
    upstream = FakeModelsUpstream("openai", {"sk-proj-failing-key-00001111"}).start()
    try:
        await _failing_key_put_back(admin_env, upstream.base_url)
    finally:
        upstream.stop()


async def _failing_key_put_back(admin_env: AdminEnv, base_url: str) -> None:
    """Asked first; then probed (it works now) and back in rotation."""
    provider = add_provider("openai", "openai", SECRET, "sk-proj-failing-key-00001111", base_url)
    reason = "HTTP 401: Incorrect API key provided: sk-**[/b]1111. See [the docs]"
    ProviderKey.update(failing=True, failure_reason=reason, last_failed_at=utcnow()).execute()
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=NARROW, notifications=True) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: column(pilot, "#keys", 2) == ["failing"], "the failing key")
        await until(pilot, lambda: reason in text_of(pilot, "#key-check"), "the whole reason")
        assert "x puts it back" in text_of(pilot, "#key-check")

        await pilot.press("tab", "x")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the question")
        assert reason in text_of(pilot, "#confirm-message")
        await pilot.press("n")
        await until(pilot, lambda: screen_name(pilot) == "ProvidersScreen", "no change")
        assert provider_keys(provider.id)[0].failing

        await pilot.press("x")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the question")
        await pilot.press("y")
        await until(pilot, lambda: column(pilot, "#keys", 2) == ["in use"], "back in rotation")
        assert "Key sk-…1111 back in rotation" in notifications(pilot)
    (key,) = provider_keys(get_provider("openai").id)
    assert key.enabled and not key.failing


async def test_adjusting_shows_exact_money_and_brackets_as_typed(admin_env: AdminEnv) -> None:
    create_user("alice@example.com")
    adjust_balance("alice@example.com", "1.234567891", "opening credit")
    app = create_admin_app(admin_env.config)
    async with app.run_test(size=NARROW, notifications=True) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: column(pilot, "#users") == ["alice@example.com"], "alice")
        await open_form(pilot, "a", "the adjust form")
        assert "Balance now $1.234567891" in text_of(pilot, ".dialog-note")
        await fill(pilot, "amount", "[/b]5")
        await fill(pilot, "reason", "[bold]fix[/bold]")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "'[/b]5'" in text_of(pilot, "#form-error"), "the error")

        await fill(pilot, "amount", "0.1")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: screen_name(pilot) == "ConfirmDialog", "the confirmation")
        assert "Reason: [bold]fix[/bold]" in text_of(pilot, "#confirm-message")
        await pilot.press("y")
        await until(pilot, lambda: screen_name(pilot) == "UsersScreen", "the form to close")
        await until(pilot, lambda: bool(notifications(pilot)), "the notification")
        assert notifications(pilot) == ["alice@example.com: balance now $1.334567891"]


async def test_question_mark_shows_and_hides_every_key_of_the_screen(admin_env: AdminEnv) -> None:
    async with create_admin_app(admin_env.config).run_test(size=NARROW) as pilot:
        await pilot.press("f4")
        await until(pilot, lambda: screen_name(pilot) == "ProvidersScreen", "the providers")
        await pilot.press("question_mark")
        await until(pilot, lambda: bool(pilot.app.screen.query("HelpPanel")), "the key panel")
        providers = pilot.app.screen.query_one("#providers", LiveTable)
        await until(pilot, lambda: providers.size.width < NARROW[0] - 20, "the table to make room")
        await pilot.press("question_mark")
        await until(pilot, lambda: not pilot.app.screen.query("HelpPanel"), "the panel to go")


async def test_escape_leaves_the_search_box_for_the_table(admin_env: AdminEnv) -> None:
    create_user("alice@example.com")
    create_user("bob@example.com")
    async with create_admin_app(admin_env.config).run_test(size=NARROW) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: len(column(pilot, "#users")) == 2, "the users")
        await pilot.press("slash", *"bob", "escape")
        await until(pilot, lambda: column(pilot, "#users") == ["bob@example.com"], "the search")
        assert pilot.app.focused is table(pilot, "#users")
        await pilot.press("n")  # a key of the table again, not a letter of the search
        await until(pilot, lambda: screen_name(pilot) == "FormDialog", "the new user form")

        await pilot.press("escape", "f5", "slash", *"ok", "escape")
        await until(pilot, lambda: screen_name(pilot) == "ActivityScreen", "the activity")
        assert pilot.app.focused is table(pilot, "#requests")


async def test_the_highlighted_model_is_shown_in_full_under_the_table(admin_env: AdminEnv) -> None:
    long_id = "openrouter/meta-llama/llama-4-maverick-17b-128e-instruct"
    add_provider(
        "openrouter", "openai", SECRET, "sk-or-v1-polish-key-0000", "http://127.0.0.1:9/v1"
    )
    set_model("openrouter/qwen/qwen3-coder", "0.4", "1.6", max_output_tokens=32000)
    set_model(long_id, "0.2", "0.6")
    async with create_admin_app(admin_env.config).run_test(size=NARROW) as pilot:
        await pilot.press("f3")
        await until(pilot, lambda: len(column(pilot, "#models")) == 2, "the catalog")
        assert table(pilot, "#models").ordered_columns[0].width < len(long_id)
        await until(pilot, lambda: long_id in text_of(pilot, "#model-detail"), "the full id")
        assert "$0.2 in, $0.6 out per 1M tokens · no max output set · cache read $0.2, " in (
            text_of(pilot, "#model-detail")
        )
        await pilot.press("down")
        await until(pilot, lambda: "max output 32,000" in text_of(pilot, "#model-detail"), "qwen")


async def test_the_palette_switches_the_activity_table(admin_env: AdminEnv) -> None:
    async with create_admin_app(admin_env.config).run_test(size=NARROW) as pilot:
        await pilot.press("f5")
        await until(pilot, lambda: screen_name(pilot) == "ActivityScreen", "the activity")
        await run_command(pilot, "switch req")
        tabs = pilot.app.screen.query_one("#activity-tabs", TabbedContent)
        await until(pilot, lambda: tabs.active == "tab-payments", "the payments table")
        await run_command(pilot, "filter act")
        await until(pilot, lambda: pilot.app.focused is pilot.app.screen.query_one("#filter"), "f")


async def test_what_was_just_added_is_under_the_cursor(admin_env: AdminEnv) -> None:
    for name in ("aaron", "beth", "carl"):
        create_user(f"{name}@example.com")
    add_provider("anthropic", "anthropic", SECRET, "sk-ant-polish-key-00000001")
    async with create_admin_app(admin_env.config).run_test(size=NARROW) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: len(column(pilot, "#users")) == 3, "the users")
        await open_form(pilot, "n", "the new user form")
        await fill(pilot, "email", "zoe@example.com")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: len(column(pilot, "#users")) == 4, "the new user")
        users = table(pilot, "#users")
        await until(pilot, lambda: users.cursor_row == 3, "the cursor on the new user")
        assert column(pilot, "#users")[3] == "zoe@example.com"

        await pilot.press("f4")
        await until(pilot, lambda: len(column(pilot, "#providers")) == 1, "the providers")
        await open_form(pilot, "n", "the provider form")
        await fill(pilot, "name", "zai")
        await fill(pilot, "key", "sk-zai-polish-key-00000002")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: column(pilot, "#providers") == ["anthropic", "zai"], "zai")
        providers = table(pilot, "#providers")
        await until(pilot, lambda: providers.cursor_row == 1, "the cursor on the new provider")
        await until(pilot, lambda: "Keys of zai" in text_of(pilot, "#keys-title"), "its keys")


async def test_activity_times_drop_the_date_for_today(admin_env: AdminEnv) -> None:
    alice = create_user("alice@example.com").id
    add_usage(alice, NOW - timedelta(minutes=3), request_id="today")
    add_usage(alice, NOW - timedelta(days=2), request_id="older")
    async with create_admin_app(admin_env.config, clock=lambda: NOW).run_test(size=NARROW) as p:
        await p.press("f5")
        await until(p, lambda: len(column(p, "#requests")) == 2, "the requests")
        assert column(p, "#requests") == ["12:27:15", "02-27 12:30"]


async def test_the_dashboards_newest_requests_show_the_date_unless_today(
    admin_env: AdminEnv,
) -> None:
    """On a quiet box the newest requests may be days old: their time alone said today."""
    alice = create_user("alice@example.com").id
    add_usage(alice, NOW - timedelta(minutes=3), request_id="today")
    add_usage(alice, NOW - timedelta(days=2), request_id="older")
    async with create_admin_app(admin_env.config, clock=lambda: NOW).run_test(size=NARROW) as p:
        await until(p, lambda: len(column(p, "#recent")) == 2, "the requests")
        assert column(p, "#recent") == ["12:27:15", "02-27 12:30"]


@sqlite_file_only
async def test_a_new_empty_database_is_pointed_out(admin_env: AdminEnv, tmp_path: Path) -> None:
    sections = base_sections(tmp_path)
    sections["database"]["path"] = str(tmp_path / "typo" / "codelace.db")
    config = load_config(str(write_config(tmp_path / "typo.toml", sections)))
    async with create_admin_app(config).run_test(size=NARROW, notifications=True) as pilot:
        await until(pilot, lambda: bool(notifications(pilot)), "the warning")
        assert notifications(pilot)[0].startswith(f"{tmp_path / 'typo' / 'codelace.db'} did not")
    async with create_admin_app(admin_env.config).run_test(notifications=True) as pilot:
        await until(pilot, lambda: "total 0" in text_of(pilot, "#rpm-caption"), "the dashboard")
        assert notifications(pilot) == []  # the database existed


async def test_enter_on_a_request_opens_it_and_on_a_payment_its_user(admin_env: AdminEnv) -> None:
    create_user("alice@example.com")
    bob = create_user("bob@example.com").id
    add_usage(bob, NOW - timedelta(minutes=1), request_id="bobs")
    adjust_balance("alice@example.com", "5", "welcome")  # an admin payment of alice's
    async with create_admin_app(admin_env.config, clock=lambda: NOW).run_test(size=NARROW) as p:
        await until(p, lambda: column(p, "#recent", 2) == ["bob@example.com"], "bob's request")
        title = str(p.app.screen.query_one("#recent-title", Label).visual)
        assert "Enter: the request" in title, title  # it said "its user", and opened the request
        await p.press("enter")
        await until(p, lambda: screen_name(p) == "RequestDetailScreen", "bob's request")
        await until(p, lambda: "bobs" in text_of(p, "#request-detail"), "the request in full")
        await p.press("u")  # its user
        await until(p, lambda: screen_name(p) == "UserDetailScreen", "bob's account")
        await until(p, lambda: "bob@example.com" in text_of(p, "#summary"), "bob's summary")
        await p.press("escape", "escape")
        await until(p, lambda: screen_name(p) == "DashboardScreen", "back to the dashboard")

        await p.press("f5", "t")
        await until(p, lambda: column(p, "#payments", 1) == ["alice@example.com"], "payment")
        await p.press("enter")
        await until(p, lambda: screen_name(p) == "UserDetailScreen", "alice's account")
        await until(p, lambda: "alice@example.com" in text_of(p, "#summary"), "alice's summary")
