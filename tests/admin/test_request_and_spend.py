"""Finding a request by the x-request-id a client got, opening it in full, and the spend report
(grouped by user, key or model, sorted by spend), driven through the dashboard."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from textual.pilot import Pilot

from admin_tui.app import create_admin_app
from codelace_box.accounts.keys import create_key
from codelace_box.accounts.users import create_user
from codelace_box.db.history import delete_usage_batch
from codelace_box.db.models import UsageRecord
from codelace_box.db.timestamps import db_time
from codelace_box.reports.spend_days import daily_spend_report
from tests.admin.pilot import AdminEnv, add_usage, column, screen_name, text_of, until

pytestmark = pytest.mark.timeout(60)
NOW = datetime(2026, 11, 20, 12, 0, 0)
SIZE = (120, 32)


async def open_activity(pilot: Pilot[None]) -> None:
    await pilot.press("f5")
    await until(pilot, lambda: screen_name(pilot) == "ActivityScreen", "activity")


async def the_one_requests_detail(pilot: Pilot[None], request_tail: str) -> str:
    """Activity's one request opened: its detail's text (once it shows that request)."""
    await open_activity(pilot)
    await until(pilot, lambda: len(column(pilot, "#requests")) == 1, "the request")
    await pilot.press("enter")
    await until(pilot, lambda: request_tail in text_of(pilot, "#request-detail"), "its detail")
    return text_of(pilot, "#request-detail")


async def test_a_request_is_found_by_its_id_and_opens_in_full(admin_env: AdminEnv) -> None:
    ana = create_user("ana@example.com")
    key = create_key(ana.id, "laptop").key
    for n in range(3):
        add_usage(ana.id, NOW - timedelta(minutes=n + 1), request_id=f"req_{n:024x}")
    add_usage(ana.id, NOW, request_id="req_00000000000000000000beef", status="error",
              error_code="upstream_error", model="openai/gpt-5.4-mini")  # fmt: skip
    UsageRecord.update(api_key=key.id, route="/v1/responses", cache_read_tokens=200).where(
        UsageRecord.request_id == "req_00000000000000000000beef"
    ).execute()
    async with create_admin_app(admin_env.config, clock=lambda: NOW).run_test(size=SIZE) as pilot:
        await open_activity(pilot)
        await until(pilot, lambda: len(column(pilot, "#requests")) == 4, "four requests")
        await pilot.press("slash", *"req_00000000000000000000BEEF")  # as pasted, any case
        await until(pilot, lambda: len(column(pilot, "#requests")) == 1, "the one request")
        await pilot.press("enter", "enter")  # leave the filter, open the row
        await until(pilot, lambda: screen_name(pilot) == "RequestDetailScreen", "the request")
        await until(pilot, lambda: "beef" in text_of(pilot, "#request-detail"), "its detail")
        shown = text_of(pilot, "#request-detail")
        for part in ("/v1/responses", "openai/gpt-5.4-mini", "upstream model gpt-5.4-mini",
                     f"{key.key_prefix}… (laptop)", "error (upstream_error)", "420 ms",
                     "1,000 in (cache read 200", "500 out", "input $2.50", "output $10.00",
                     "$0.0075", "ana@example.com"):  # fmt: skip
            assert part in shown, (part, shown)
        await pilot.press("escape")
        await until(pilot, lambda: screen_name(pilot) == "ActivityScreen", "back")


async def test_a_request_that_consulted_an_advisor_shows_its_part_and_prices(
    admin_env: AdminEnv,
) -> None:
    """An advisor model's tokens are charged at its own prices: the detail shows them, as the
    usage row recorded them, besides the requested model's."""
    ana = create_user("ana@example.com")
    add_usage(ana.id, NOW, request_id="req_000000000000000000000adv")
    UsageRecord.update(
        advisor_model="anthropic/claude-opus-4.6", advisor_input_tokens=8000,
        advisor_cache_read_tokens=1000, advisor_cache_write_tokens=3000,
        advisor_output_tokens=700, advisor_input_per_1m_nanos=5_000_000_000,
        advisor_output_per_1m_nanos=25_000_000_000, advisor_cache_read_per_1m_nanos=500_000_000,
        advisor_cache_write_per_1m_nanos=6_250_000_000,
        advisor_cache_write_1h_per_1m_nanos=10_000_000_000,
    ).where(UsageRecord.request_id == "req_000000000000000000000adv").execute()  # fmt: skip
    async with create_admin_app(admin_env.config, clock=lambda: NOW).run_test(size=SIZE) as pilot:
        shown = await the_one_requests_detail(pilot, "0adv")
        for part in ("anthropic/claude-opus-4.6", "8,000 in (cache read 1,000, written 3,000)",
                     "700 out", "input $5.00", "output $25.00", "cache read $0.50",
                     "1h cache write $10.00"):  # fmt: skip
            assert part in shown, (part, shown)


async def test_a_requests_one_hour_cache_writes_are_shown_beside_their_price(
    admin_env: AdminEnv,
) -> None:
    """The detail listed the 1h cache write price but not how many of the written tokens were
    charged at it (the usage row has it): the cost could not be made out of what was shown."""
    ana = create_user("ana@example.com")
    add_usage(ana.id, NOW, request_id="req_0000000000000000000001hw")
    UsageRecord.update(
        cache_write_tokens=4000, cache_write_1h_tokens=1500,
        cache_write_per_1m_nanos=3_125_000_000, cache_write_1h_per_1m_nanos=5_000_000_000,
        advisor_model="anthropic/claude-opus-4.6", advisor_input_tokens=8000,
        advisor_cache_write_tokens=3000, advisor_cache_write_1h_tokens=2000,
        advisor_output_tokens=700,
    ).where(UsageRecord.request_id == "req_0000000000000000000001hw").execute()  # fmt: skip
    async with create_admin_app(admin_env.config, clock=lambda: NOW).run_test(size=SIZE) as pilot:
        shown = await the_one_requests_detail(pilot, "01hw")
        for part in ("written 4,000 (1,500 of them for 1 hour)",
                     "written 3,000 (2,000 of them for 1 hour)"):  # fmt: skip
            assert part in shown, (part, shown)


async def test_the_spend_report_groups_and_sorts_by_spend(admin_env: AdminEnv) -> None:
    big, small = create_user("big@example.com"), create_user("small@example.com")
    add_usage(big.id, NOW - timedelta(hours=1), request_id="b1", cost_nanos=9_000_000_000)
    add_usage(big.id, NOW - timedelta(hours=2), request_id="b2", cost_nanos=1_000_000_000,
              model="openai/gpt-5.4-mini")  # fmt: skip
    add_usage(small.id, NOW - timedelta(hours=3), request_id="s1", cost_nanos=2_000_000_000)
    add_usage(small.id, NOW - timedelta(days=10), request_id="old", cost_nanos=50_000_000_000)
    async with create_admin_app(admin_env.config, clock=lambda: NOW).run_test(size=SIZE) as pilot:
        await open_activity(pilot)
        await pilot.press("r")
        await until(pilot, lambda: screen_name(pilot) == "SpendScreen", "the spend report")
        users = ["big@example.com", "small@example.com"]
        await until(pilot, lambda: column(pilot, "#spend") == users, "by user, last 7 days")
        assert column(pilot, "#spend", 5) == ["$10.00", "$2.00"]
        await pilot.press("s")
        await until(pilot, lambda: column(pilot, "#spend") == users[::-1], "smallest first")
        await pilot.press("s", "w")  # 30 days: the old request counts
        await until(pilot, lambda: column(pilot, "#spend") == users[::-1], "30 days")
        assert column(pilot, "#spend", 5) == ["$52.00", "$10.00"]
        assert "total $62.00" in text_of(pilot, "#spend-title")
        await pilot.press("g", "g")  # user -> key -> model
        await until(
            pilot,
            lambda: column(pilot, "#spend") == ["openai/gpt-5.4", "openai/gpt-5.4-mini"],
            "by model",
        )
        assert column(pilot, "#spend", 5) == ["$61.00", "$1.00"]


async def test_the_spend_report_counts_what_retention_deleted_as_usage_report_does(
    admin_env: AdminEnv,
) -> None:
    ana = create_user("ana@example.com")
    add_usage(ana.id, NOW - timedelta(hours=1), request_id="new", cost_nanos=1_000_000_000)
    add_usage(ana.id, NOW - timedelta(days=10), request_id="old", cost_nanos=4_000_000_000)
    assert delete_usage_batch(db_time(NOW - timedelta(days=5)), 100) == 1  # retention's pass
    async with create_admin_app(admin_env.config, clock=lambda: NOW).run_test(size=SIZE) as pilot:
        await open_activity(pilot)
        await pilot.press("r", "w")  # 30 days
        await until(pilot, lambda: column(pilot, "#spend", 5) == ["$5.00"], "both requests")
        assert "total $5.00" in text_of(pilot, "#spend-title")
        await pilot.press("w")  # all of it
        await until(pilot, lambda: "all" in text_of(pilot, "#spend-title"), "every day")
        assert column(pilot, "#spend", 5) == ["$5.00"]
    report = daily_spend_report("user", NOW - timedelta(days=30), NOW)
    assert [r.spend_nanos for r in report] == [5_000_000_000]  # `usage report`'s figure


async def test_the_spend_report_shows_an_international_domain_in_unicode(
    admin_env: AdminEnv,
) -> None:
    """By user and by key, the spend report showed an address at bücher.de in its stored ASCII
    form (xn--bcher-kva.de), where every other table of the dashboard, and usage report's
    table, show it in Unicode."""
    zoe = create_user("zoe@bücher.de")
    key = create_key(zoe.id, "laptop")
    add_usage(zoe.id, NOW - timedelta(hours=1), request_id="z1", api_key_id=key.key.id)
    async with create_admin_app(admin_env.config, clock=lambda: NOW).run_test(size=SIZE) as pilot:
        await open_activity(pilot)
        await pilot.press("r")
        await until(pilot, lambda: screen_name(pilot) == "SpendScreen", "the spend report")
        await until(pilot, lambda: len(column(pilot, "#spend")) == 1, "by user")
        assert column(pilot, "#spend") == ["zoe@bücher.de"]
        await pilot.press("g")
        await until(pilot, lambda: "by key" in text_of(pilot, "#spend-title"), "by key")
        await until(pilot, lambda: column(pilot, "#spend", 0) == [key.key.key_prefix], "the key")
        assert column(pilot, "#spend", 1) == ["laptop (zoe@bücher.de)"]
