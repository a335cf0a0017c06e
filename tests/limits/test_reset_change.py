"""A key's limit_reset changed in the middle of a period (daily to monthly, weekly, none and
back): spent_usd is what the key spent in the new current period, from its history (its days,
kept by settlement), as OpenRouter shows a key's usage for the period its limit counts; and the
cap at admission counts the same figure. Before, the old period's spend was carried over
instead: daily to monthly showed (and capped) only today's spend, monthly to daily the whole
month's, and daily to none only today's forever."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from codelace_box.accounts.keys import create_key, update_key
from codelace_box.accounts.limits import KEY_SPEND_SINCE_SQL, spent_in_period
from codelace_box.accounts.users import create_user
from codelace_box.api.views import key_view
from codelace_box.billing.ledger import post_entry
from codelace_box.db.core import POSTGRES, engine, utcnow, write_transaction
from codelace_box.db.models import ApiKey
from codelace_box.errors import InsufficientCredits
from codelace_box.gateway.admission import Admission
from codelace_box.gateway.metering import Settlement, admit, settle
from tests.clock import clear_of_midnight
from tests.query_plan import query_plan

TODAY_NANOS = 3_000


def _history(key_id: int, user_id: int) -> dict[str, int]:
    """Spend on earlier days, as settlements of those days left it in the key's days and
    running total (a test cannot settle yesterday); today's comes from a real settlement.
    The key's day rows by day."""
    today = utcnow().date()
    days = {
        today.replace(day=1) - timedelta(days=1): 1_000_000,  # last month's last day
        today.replace(day=1): 100_000,  # the 1st of this month
        today - timedelta(days=today.weekday()): 20_000,  # this week's Monday
    }
    spend: dict[str, int] = {}
    for day, nanos in days.items():
        if day < today:
            spend[day.isoformat()] = spend.get(day.isoformat(), 0) + nanos
    with write_transaction() as tx:
        for day, nanos in spend.items():
            tx.execute(
                "INSERT INTO key_day_usage (api_key_id, day, user_id, requests, errors, "
                "input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
                "cost_nanos) VALUES (?, ?, ?, 1, 0, 0, 0, 0, 0, ?)",
                (key_id, day, user_id, nanos),
            )
        tx.execute(
            "UPDATE key_usage SET cost_nanos = cost_nanos + ? WHERE api_key_id = ?",
            (sum(spend.values()), key_id),
        )
    return spend


def _since(spend: dict[str, int], first_day: str) -> int:
    return sum(n for day, n in spend.items() if day >= first_day) + TODAY_NANOS


def _settled_today(user_id: int, key_id: int, request_id: str, nanos: int) -> None:
    admit(user_id, request_id, nanos, Admission(key_id=key_id))
    settle(Settlement(
        request_id=request_id, user_id=user_id, key_id=key_id, model="m", provider="p",
        upstream_model="m", input_per_1m_nanos=0, output_per_1m_nanos=1_000_000,
        input_tokens=0, output_tokens=nanos, status="ok", stream=False,
    ))  # fmt: skip


def _spent(key_id: int) -> int:
    key = ApiKey.get_by_id(key_id)
    shown = key_view(key)["spent_usd"]  # GET /api/v1/auth/key, the CLI and the portal
    assert round(shown * 10**9) == spent_in_period(key)  # the dashboard's figure
    return spent_in_period(key)


@pytest.mark.parametrize("first", ["daily", "monthly"])
def test_a_changed_reset_shows_and_caps_the_new_periods_spend(
    migrated_db: Path, first: str
) -> None:
    clear_of_midnight(5)  # the days written and the periods read are of one "today"
    user = create_user(f"reset-{first}@limits.test")
    post_entry(user.id, 10**9, "admin", "seed", f"seed-{first}")
    key = create_key(user.id, "k", {"limit_usd": "1", "limit_reset": first}).key
    _settled_today(user.id, key.id, "today", TODAY_NANOS)
    spend = _history(key.id, user.id)
    today = utcnow().date()
    month = _since(spend, today.replace(day=1).isoformat())
    week = _since(spend, (today - timedelta(days=today.weekday())).isoformat())
    expected = {"daily": TODAY_NANOS, "weekly": week, "monthly": month, None: sum(spend.values())
                + TODAY_NANOS}  # fmt: skip
    for reset in ("weekly", "monthly", None, "daily", "monthly"):
        update_key(key.uuid, {"limit_reset": reset})
        assert _spent(key.id) == expected[reset], reset
    # The cap counts what is shown: 1,000 nanos of room left in the month, not more.
    update_key(key.uuid, {"limit_usd": f"{(month + 1_000) / 10**9:.9f}"})
    with pytest.raises(InsufficientCredits) as refused:
        admit(user.id, "over", 1_001, Admission(key_id=key.id))
    assert refused.value.code == "key_limit_reached"
    admit(user.id, "fits", 1_000, Admission(key_id=key.id))


def test_a_budget_set_on_a_key_without_one_counts_its_whole_life(migrated_db: Path) -> None:
    """No reset is one period that never ends: a cap set later counts everything the key
    spent, as a key that had the cap from the start would."""
    clear_of_midnight(5)  # today's settlement and the earlier days written are of one today
    user = create_user("lifetime@limits.test")
    post_entry(user.id, 10**9, "admin", "seed", "seed-lifetime")
    key = create_key(user.id, "k", {"limit_reset": "daily"}).key
    _settled_today(user.id, key.id, "today", TODAY_NANOS)
    spend = _history(key.id, user.id)
    update_key(key.uuid, {"limit_reset": None})  # no budget now: its running total counts
    assert _spent(key.id) == sum(spend.values()) + TODAY_NANOS
    update_key(key.uuid, {"limit_usd": "5"})
    assert _spent(key.id) == sum(spend.values()) + TODAY_NANOS


def test_a_keys_period_is_read_along_the_key_days_primary_key(migrated_db: Path) -> None:
    """A reset changed reads the key's days inside the transaction that every admission and
    settlement of every box waits for (hotpath.one_writer_with_requests): along key_day_usage's
    primary key (user_id, day, api_key_id), one account's days from the period's start, not a
    scan of every key's days (the key was not the primary key's first column since migration
    22 reordered it)."""
    params = (1, "2026-02-01", 2)
    plan = query_plan(KEY_SPEND_SINCE_SQL, params)
    if engine() == POSTGRES:
        assert "key_day_usage_pkey" in plan and "Index Cond: ((user_id = " in plan, plan
        return
    assert "SEARCH key_day_usage USING PRIMARY KEY (user_id=? AND day>?)" in plan, plan
