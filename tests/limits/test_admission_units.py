"""The admission and settlement of a key's cap and an account's limits, on a real SQLite file:
what each refusal leaves behind (nothing), how settlement keeps the key's spend and holds, the
sweep recounting a key's holds, and doctor noticing a key whose holds drifted."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from codelace_box.accounts.keys import create_key
from codelace_box.accounts.users import create_user
from codelace_box.billing.ledger import post_entry
from codelace_box.db.core import close_database, db_time, open_database, utcnow, write_transaction
from codelace_box.db.models import ApiKey, Hold, RateEvent, User
from codelace_box.doctor import check_database
from codelace_box.errors import InsufficientCredits, RateLimited
from codelace_box.gateway.admission import Admission
from codelace_box.gateway.metering import Settlement, admit, release_holds_in, settle


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
    user_id, key_id = _funded_key("period@units.test", limit_usd="1", limit_reset="daily")
    admit(user_id, "a", 900, Admission(key_id=key_id))
    yesterday = db_time(utcnow() - timedelta(days=1))
    ApiKey.update(spent_nanos=777, period_start=yesterday).where(ApiKey.id == key_id).execute()
    settle(_done("a", user_id, key_id, 300))
    key = ApiKey.get_by_id(key_id)
    assert (key.spent_nanos, key.held_nanos) == (300, 0)  # yesterday's 777 is gone
    assert str(key.period_start) == db_time(utcnow().replace(hour=0, minute=0, second=0,
                                                              microsecond=0))  # fmt: skip


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
