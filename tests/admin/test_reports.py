"""reports/ (traffic, usage, payments): the dashboard's figures from a real database with
usage rows and payments at known moments."""

from __future__ import annotations

from datetime import datetime, timedelta

from codelace_box.accounts.keys import create_key
from codelace_box.accounts.users import create_user, set_user_status
from codelace_box.db.models import ApiKey, Payment
from codelace_box.reports.payments import list_payments, pending_payments, revenue_nanos
from codelace_box.reports.traffic import (
    last_activity,
    recent_requests,
    requests_per_minute,
    usage_totals,
    user_counts,
    window_stats,
)
from tests.admin.pilot import AdminEnv, add_usage

NOW = datetime(2026, 3, 1, 12, 30, 15)


def seed() -> tuple[int, int]:
    """Usage rows written as the box writes them: each when it settles, oldest first."""
    alice = create_user("alice@example.com").id
    bob = create_user("bob@corp.example").id
    add_usage(alice, NOW - timedelta(days=2), request_id="a3", cost_nanos=999_999)
    add_usage(bob, NOW - timedelta(hours=5), request_id="b2", cost_nanos=40_000)
    add_usage(
        bob,
        NOW - timedelta(minutes=59),
        request_id="b1",
        status="error",
        error_code="upstream_error",
        tokens=(10, 0),
        cost_nanos=0,
        model="anthropic/claude",
    )
    add_usage(alice, NOW - timedelta(minutes=1, seconds=5), request_id="a2", cost_nanos=2_000)
    add_usage(alice, NOW - timedelta(seconds=10), request_id="a1", cost_nanos=1_000)
    return alice, bob


def payment(user: int, nanos: int, kind: str, status: str, when: datetime) -> None:
    Payment.create(
        user=user,
        amount_nanos=nanos,
        kind=kind,
        status=status,
        created_at=when,
        completed_at=when if status == "completed" else None,
    )


def test_window_figures(admin_env: AdminEnv) -> None:
    seed()
    hour = window_stats(NOW - timedelta(hours=1))
    assert (hour.requests, hour.errors, hour.active_users, hour.spend_nanos) == (3, 1, 2, 3_000)
    assert (hour.input_tokens, hour.output_tokens, hour.tokens) == (2010, 1000, 3010)
    day = window_stats(NOW - timedelta(days=1))
    assert (day.requests, day.spend_nanos, day.active_users) == (4, 43_000, 2)
    assert window_stats(NOW).requests == 0


def test_requests_per_minute_buckets_end_with_the_current_minute(admin_env: AdminEnv) -> None:
    seed()
    counts = requests_per_minute(NOW, 60)
    assert len(counts) == 60 and sum(counts) == 3
    assert counts[-1] == 1  # 12:30:05, this minute
    assert counts[-2] == 1  # 12:29:10
    assert counts[0] == 1  # 11:31:15: the window starts at 11:31, 59 minutes back
    assert requests_per_minute(NOW, 1) == [1]


def test_recent_requests_newest_first_with_filters(admin_env: AdminEnv) -> None:
    alice, bob = seed()
    assert [r.request_id for r in recent_requests()] == ["a1", "a2", "b1", "b2", "a3"]
    assert [r.request_id for r in recent_requests(limit=2)] == ["a1", "a2"]
    assert [r.request_id for r in recent_requests(search="CORP")] == ["b1", "b2"]
    assert [r.request_id for r in recent_requests(search="error")] == ["b1"]
    assert [r.request_id for r in recent_requests(search="bob claude")] == ["b1"]
    assert [r.request_id for r in recent_requests(search="alice claude")] == []
    assert [r.request_id for r in recent_requests(user_id=alice)] == ["a1", "a2", "a3"]
    first = recent_requests(limit=1)[0]
    assert (first.email, first.created_at, first.cost_nanos) == (
        "alice@example.com",
        NOW - timedelta(seconds=10),
        1_000,
    )
    totals = usage_totals(bob)
    assert (totals.requests, totals.input_tokens, totals.cost_nanos) == (2, 1010, 40_000)


def test_last_activity_is_the_latest_key_use(admin_env: AdminEnv) -> None:
    alice, bob = seed()
    carol = create_user("carol@example.com").id
    used = {}
    for user, name, minutes in [(bob, "ci", 1), (bob, "laptop", 30), (alice, "phone", 90)]:
        key = create_key(user, name).key
        used[name] = NOW - timedelta(minutes=minutes)
        ApiKey.update(last_used_at=used[name]).where(ApiKey.id == key.id).execute()
    create_key(carol, "never used")
    assert last_activity([alice, bob, carol]) == {alice: used["phone"], bob: used["ci"]}
    assert last_activity([]) == {}
    set_user_status("carol@example.com", "disabled")
    assert user_counts() == (3, 1)


def test_revenue_counts_completed_topups_only(admin_env: AdminEnv) -> None:
    alice, bob = seed()
    payment(alice, 10_000_000_000, "topup", "completed", NOW - timedelta(minutes=5))
    payment(bob, 25_000_000_000, "topup", "completed", NOW - timedelta(hours=3))
    payment(bob, 50_000_000_000, "topup", "pending", NOW - timedelta(minutes=1))
    payment(bob, 1_000_000_000, "trial", "completed", NOW - timedelta(minutes=1))
    payment(alice, 5_000_000_000, "admin", "completed", NOW - timedelta(minutes=1))
    payment(alice, 7_000_000_000, "topup", "expired", NOW - timedelta(minutes=1))
    assert revenue_nanos(NOW - timedelta(hours=1)) == 10_000_000_000
    assert revenue_nanos(NOW - timedelta(days=1)) == 35_000_000_000
    assert revenue_nanos() == 35_000_000_000
    assert pending_payments() == 1
    listed = list_payments()
    assert [(p.kind, p.status) for p in listed] == [
        ("topup", "expired"),
        ("admin", "completed"),
        ("trial", "completed"),
        ("topup", "pending"),
        ("topup", "completed"),
        ("topup", "completed"),
    ]
    assert [p.status for p in list_payments(search="bob pending")] == ["pending"]
    assert [p.amount_nanos for p in list_payments(user_id=alice, search="topup")] == [
        7_000_000_000,
        10_000_000_000,
    ]


def test_revenue_leaves_out_what_refunds_and_disputes_took_back(admin_env: AdminEnv) -> None:
    alice, bob = seed()
    payment(alice, 10_000_000_000, "topup", "completed", NOW - timedelta(minutes=5))
    payment(bob, 25_000_000_000, "topup", "completed", NOW - timedelta(hours=3))
    Payment.update(refunded_nanos=4_000_000_000).where(Payment.user == bob).execute()
    assert revenue_nanos() == 31_000_000_000
    assert revenue_nanos(NOW - timedelta(hours=1)) == 10_000_000_000
    assert [(p.amount_nanos, p.refunded_nanos) for p in list_payments()] == [
        (10_000_000_000, 0),
        (25_000_000_000, 4_000_000_000),
    ]


def test_the_activity_and_payment_filters_find_an_international_domain_as_typed(
    admin_env: AdminEnv,
) -> None:
    """An address at bücher.de is kept as xn--bcher-kva.de: filtering the activity (or the
    payments) by `bücher` found nothing, only the punycode form did."""
    zoe = create_user("zoe@Bücher.de").id
    ana = create_user("ana@example.com").id
    add_usage(zoe, NOW, request_id="z1")
    add_usage(ana, NOW, request_id="a1")
    Payment.create(user=zoe, amount_nanos=10**9, kind="topup", status="pending")
    for search in ("bücher", "BÜCHER.DE", "zoe@bücher", "ｂüｃｈｅｒ", "xn--bcher"):
        assert [r.request_id for r in recent_requests(search=search)] == ["z1"], search
        assert [p.email for p in list_payments(search=search)] == ["zoe@xn--bcher-kva.de"]
