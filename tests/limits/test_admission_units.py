"""The admission and settlement of a key's cap and an account's limits, on a real SQLite file:
what each refusal leaves behind (nothing), how settlement keeps the key's spend and holds, the
sweep recounting a key's holds, and doctor noticing a key whose holds drifted; a key without
budget whose row its requests leave alone, the key lookup's stale guess of a budget, and a
budget set or cleared while requests are in flight."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from codelace_box.accounts.keys import create_key, update_key
from codelace_box.accounts.limits import spent_in_period
from codelace_box.accounts.users import create_user
from codelace_box.billing.ledger import post_entry
from codelace_box.db import hotpath
from codelace_box.db.core import close_database, db_time, open_database, utcnow, write_transaction
from codelace_box.db.models import ApiKey, Hold, RateEvent, User
from codelace_box.doctor import check_database
from codelace_box.errors import InsufficientCredits, RateLimited
from codelace_box.gateway.admission import (
    Admission,
    Asked,
    check_account_limits,
    key_cap_refusal,
    rpm_bucket,
    with_the_hold,
)
from codelace_box.gateway.holds import release_holds_in
from codelace_box.gateway.metering import Settlement, admit, settle
from tests.clock import clear_of_midnight


def _funded_key(email: str, usd: int = 1, **limits: object) -> tuple[int, int]:
    user = create_user(email)
    post_entry(user.id, usd * 10**9, "admin", "seed", f"seed-{email}")
    return user.id, create_key(user.id, "k", limits).key.id


def _done(request_id: str, user_id: int, key_id: int, output_tokens: int) -> Settlement:
    return Settlement(
        request_id=request_id, user_id=user_id, key_id=key_id, model="m", provider="p",
        upstream_model="m", input_per_1m_nanos=0, output_per_1m_nanos=1_000_000,
        input_tokens=0, output_tokens=output_tokens, status="ok", stream=False,
    )  # fmt: skip


def _key(key_id: int) -> tuple[int, int]:
    key = ApiKey.get_by_id(key_id)
    return int(key.spent_nanos), int(key.held_nanos)


def test_the_cap_counts_spend_and_holds_and_a_refusal_changes_nothing(migrated_db: Path) -> None:
    user_id, key_id = _funded_key("cap@units.test", limit_usd="0.000001")  # 1,000 nanos
    limits = Admission(key_id=key_id)
    admit(user_id, "a", 600, limits)
    with pytest.raises(InsufficientCredits) as refused:
        admit(user_id, "b", 401, limits)  # 600 held + 401 > 1,000
    assert refused.value.code == "key_limit_reached"
    assert _key(key_id) == (0, 600)
    assert User.get_by_id(user_id).held_nanos == 600  # the refused hold left no trace
    settle(_done("a", user_id, key_id, 500))  # 500 tokens at $1/1M: 500 nanos
    assert _key(key_id) == (500, 0)
    admit(user_id, "c", 500, limits)  # 500 spent + 500 = the cap exactly
    with pytest.raises(InsufficientCredits):
        admit(user_id, "d", 1, limits)
    assert Hold.select().count() == 1


def test_a_settlement_in_a_new_period_counts_there(migrated_db: Path) -> None:
    clear_of_midnight(5)  # "yesterday" and "today" below are the settlement's
    user_id, key_id = _funded_key("period@units.test", limit_usd="1", limit_reset="daily")
    admit(user_id, "a", 900, Admission(key_id=key_id))
    yesterday = db_time(utcnow() - timedelta(days=1))
    ApiKey.update(spent_nanos=777, period_start=yesterday).where(ApiKey.id == key_id).execute()
    settle(_done("a", user_id, key_id, 300))
    key = ApiKey.get_by_id(key_id)
    assert (key.spent_nanos, key.held_nanos) == (300, 0)  # yesterday's 777 is gone
    assert str(key.period_start) == db_time(utcnow().replace(hour=0, minute=0, second=0,
                                                              microsecond=0))  # fmt: skip
    assert _spent(key_id) == 300  # a period stored as starting at its very start is current
    ApiKey.update(period_start=None).where(ApiKey.id == key_id).execute()
    assert _spent(key_id) == 0  # no period stored: the next statement starts one


def test_account_limits_refuse_before_the_key_cap_and_count_nothing(migrated_db: Path) -> None:
    user_id, key_id = _funded_key("acct@units.test", limit_usd="0.00000001")  # 10 nanos
    admit(user_id, "one", 10, Admission(key_id=key_id, rpm=2, max_concurrent=1))
    with pytest.raises(RateLimited) as busy:  # in flight: full; the cap too, but 429 first
        admit(user_id, "two", 10, Admission(key_id=key_id, rpm=2, max_concurrent=1))
    assert busy.value.retry_after_sec == 1
    with pytest.raises(InsufficientCredits) as capped:
        admit(user_id, "two", 10, Admission(key_id=key_id, rpm=2, max_concurrent=0))
    assert capped.value.code == "key_limit_reached"
    settle(_done("one", user_id, key_id, 0))  # it cost nothing: the cap is free again
    admit(user_id, "three", 10, Admission(key_id=key_id, rpm=2, max_concurrent=1))
    settle(_done("three", user_id, key_id, 0))
    with pytest.raises(RateLimited) as fast:
        admit(user_id, "four", 10, Admission(key_id=key_id, rpm=2, max_concurrent=1))
    assert 1 <= fast.value.retry_after_sec <= 60
    # Two admitted requests counted; the three refusals rolled their counting back.
    assert RateEvent.select().where(RateEvent.bucket == f"rpm:{user_id}").count() == 2


def test_the_rpm_window_is_a_whole_minute_and_retry_after_rounds_up(migrated_db: Path) -> None:
    user_id, _ = _funded_key("window@units.test")
    now = utcnow()
    limits = Admission(rpm=2)
    with write_transaction() as tx:  # two admissions 45.5 s and 30 s ago: still in the minute
        for ago in (45.5, 30):
            hotpath.insert_event(tx, rpm_bucket(user_id), db_time(now - timedelta(seconds=ago)))
    with pytest.raises(RateLimited) as refused, write_transaction() as tx:
        check_account_limits(tx, user_id, limits, now)
    # the older one leaves the window in 14.5 s: told 15, never a second too early
    assert refused.value.retry_after_sec == 15
    with write_transaction() as tx:  # 60 s after it, it is out: one slot free
        check_account_limits(tx, user_id, limits, now + timedelta(seconds=14.5))
    # More in the window than the limit (the operator lowered it to 1): the wait is until
    # enough have left for one more, not until the oldest has: both (30 s ago, and the one
    # just admitted), so a whole minute, not the 16 s until the older leaves.
    with pytest.raises(RateLimited) as lowered, write_transaction() as tx:
        check_account_limits(tx, user_id, Admission(rpm=1), now + timedelta(seconds=14.5))
    assert lowered.value.retry_after_sec == 60


def test_admissions_stamped_ahead_of_this_clock_never_hold_an_account_for_longer(
    migrated_db: Path,
) -> None:
    """Admissions stamped on a clock ahead of this one (a box whose clock ran 2 hours fast and
    was set back, another box's fast clock on PostgreSQL) counted until this clock reached
    their stamps plus a minute: an account with rpm 2 was refused for 2 hours, told "try again
    in 7260 s". As the sign-in limits do (accounts/ratelimit.py), a stamp ahead counts as made
    now, for no longer than a window: one more than a window ahead is no admission of this
    minute, and a wait is never longer than the window."""
    now = utcnow()
    for ahead, email in ((7200, "far@ahead.test"), (20, "near@ahead.test")):
        user_id, _ = _funded_key(email)
        with write_transaction() as tx:
            for _ in range(2):
                stamp = db_time(now + timedelta(seconds=ahead))
                hotpath.insert_event(tx, rpm_bucket(user_id), stamp)
        with write_transaction() as tx:
            if ahead > 60:
                check_account_limits(tx, user_id, Admission(rpm=2), now)
                continue
            with pytest.raises(RateLimited) as refused:  # within a window ahead: counted
                check_account_limits(tx, user_id, Admission(rpm=2), now)
        assert 1 <= refused.value.retry_after_sec <= 60, refused.value.retry_after_sec


def test_released_holds_and_doctor_keep_the_key_honest(migrated_db: Path) -> None:
    user_id, key_id = _funded_key("sweep@units.test")
    admit(user_id, "gone", 400, Admission(key_id=key_id))
    with write_transaction() as tx:
        release_holds_in(tx, request_ids=["gone"])
    assert _key(key_id) == (0, 0)
    ApiKey.update(held_nanos=5).where(ApiKey.id == key_id).execute()
    close_database()
    db = open_database(migrated_db)
    problems = check_database(db)[1]
    assert any(p.startswith("API key ") and "held $0.000000005" in p for p in problems), problems


def _key_held(request_id: str) -> bool:
    return bool(Hold.get(Hold.request_id == request_id).key_held)


def _spent(key_id: int) -> int:
    return spent_in_period(ApiKey.get_by_id(key_id))


def test_the_lookups_guess_of_a_budget_is_checked_in_the_admission(migrated_db: Path) -> None:
    user_id, capped = _funded_key("guess@units.test", limit_usd="0.000001")  # 1,000 nanos
    plain = create_key(user_id, "plain").key.id
    # A cap the lookup did not see (set since by another process): found, and checked.
    admit(user_id, "a", 600, Admission(key_id=capped, key_budgeted=False))
    assert _key(capped) == (0, 600) and _key_held("a")
    with pytest.raises(InsufficientCredits) as refused:
        admit(user_id, "b", 401, Admission(key_id=capped, key_budgeted=False))
    assert refused.value.code == "key_limit_reached"
    # A budget the lookup saw and that is gone: the key's row is left alone.
    admit(user_id, "c", 700, Admission(key_id=plain, key_budgeted=True))
    assert _key(plain) == (0, 0) and not _key_held("c")
    settle(_done("a", user_id, capped, 500))
    settle(_done("c", user_id, plain, 300))
    assert (_key(capped), _key(plain)) == ((500, 0), (0, 0))
    assert (_spent(capped), _spent(plain)) == (500, 300)  # the plain key's, from its totals
    assert User.get_by_id(user_id).held_nanos == 0 and Hold.select().count() == 0


def test_a_budget_set_or_cleared_mid_flight_counts_each_hold_and_charge_once(
    migrated_db: Path,
) -> None:
    user_id, key_id = _funded_key("flight@units.test")
    key_uuid = ApiKey.get_by_id(key_id).uuid
    plain = Admission(key_id=key_id, key_budgeted=False)
    admit(user_id, "before", 100, plain)
    settle(_done("before", user_id, key_id, 100))
    admit(user_id, "a", 400, plain)
    assert (_key(key_id), _spent(key_id)) == ((0, 0), 100)  # no budget: the row is not written
    update_key(key_uuid, {"limit_usd": "0.000001"})  # 1,000 nanos, with "a" in flight
    assert (_key(key_id), _key_held("a")) == ((100, 400), True)
    with pytest.raises(InsufficientCredits) as refused:
        admit(user_id, "b", 501, plain)  # 100 spent + 400 held + 501 > 1,000
    assert refused.value.code == "key_limit_reached"
    settle(_done("a", user_id, key_id, 300))
    assert _key(key_id) == (400, 0)
    admit(user_id, "c", 600, plain)  # the cap exactly
    update_key(key_uuid, {"limit_usd": None})  # cleared, with "c" in flight
    settle(_done("c", user_id, key_id, 150))
    assert (_key(key_id)[1], _spent(key_id)) == (0, 550)
    admit(user_id, "d", 10**6, plain)  # no cap any more
    settle(_done("d", user_id, key_id, 50))
    assert (_key(key_id)[1], _spent(key_id)) == (0, 600)
    update_key(key_uuid, {"limit_reset": "daily"})  # a period again: today's spend counts
    assert _key(key_id) == (600, 0)
    close_database()
    assert not check_database(open_database(migrated_db))[1]


def test_a_key_cap_refusal_points_to_a_reset_only_when_the_key_has_one(migrated_db: Path) -> None:
    """A key capped for good (no limit_reset) was told to "wait for the reset", which never
    comes; a key with a reset period is told so, with its period. Embeddings (no max_tokens)
    are told neither to lower max_tokens."""
    for reset, told in ((None, None), ("daily", "wait for the daily reset")):
        user_id, key_id = _funded_key(f"{reset}@told.test", limit_usd="0.000001", limit_reset=reset)
        with pytest.raises(InsufficientCredits) as refused:
            admit(user_id, "big", 1_001, Admission(key_id=key_id))
        message = refused.value.message
        assert ("wait for the" in message) == (told is not None), message
        assert told is None or told in message, message
        assert "raise limit_usd" in message and "lower max_tokens" in message, message
        embedding = with_the_hold(refused.value, Asked(1_001, None)).message
        assert "max_tokens" not in embedding and "raise limit_usd" in embedding, embedding


def test_a_zero_cap_with_a_reset_is_not_told_to_wait_for_it(migrated_db: Path) -> None:
    """A key capped at $0 with a daily reset was told "raise limit_usd or wait for the daily
    reset", but after the reset $0 of $0 is used up again: only a raise helps. A positive cap
    with the same reset is still told of it."""
    for limit, waits in (("0", False), ("0.000001", True)):
        user_id, key_id = _funded_key(
            f"zero{limit}@told.test", limit_usd=limit, limit_reset="daily"
        )
        with pytest.raises(InsufficientCredits) as refused:
            admit(user_id, "big", 1_001, Admission(key_id=key_id))
        message = refused.value.message
        assert ("wait for the daily reset" in message) == waits, message
        assert "raise limit_usd" in message, message


def test_a_key_cap_refusal_names_when_its_period_resets() -> None:
    """ "wait for the weekly reset (00:00 UTC)" left the user to guess which day: weekly caps
    reset on Monday, monthly ones on the 1st (the SPEC's periods), daily ones at midnight."""
    for reset, moment in (
        ("daily", "(00:00 UTC)"),
        ("weekly", "(Monday 00:00 UTC)"),
        ("monthly", "(the 1st, 00:00 UTC)"),
    ):
        assert key_cap_refusal(reset).endswith(f"wait for the {reset} reset {moment}")


def test_a_spent_cap_without_reset_reads_as_one_sentence() -> None:
    """The spent-cap words of a key without a reset period ran two brackets together ("spend
    limit (it has no reset period) (its requests in flight ..."): one bracket, as the others."""
    said = key_cap_refusal(None, left_nanos=0)
    assert said.count("(") == 1 and ") (" not in said, said
    assert "has no reset period" in said and said.endswith("raise limit_usd"), said
