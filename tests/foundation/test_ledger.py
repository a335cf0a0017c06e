"""billing/ledger.py on a real SQLite file: idempotency, the negative guard, find_mismatches."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from codelace_box.accounts.users import create_user
from codelace_box.billing.credits import adjust_balance
from codelace_box.billing.ledger import (
    entries_for,
    find_mismatches,
    ledger_sum,
    post_entry,
)
from codelace_box.db.core import close_database, connection, open_database, write_transaction
from codelace_box.db.models import Hold, LedgerEntry, Payment, User
from codelace_box.errors import InvalidRequest, NotFound
from tests.support import REPO_ROOT, cli_env


@pytest.fixture
def db_path(migrated_db: Path) -> Path:
    return migrated_db


def balance(user_id: int) -> int:
    return int(User.get_by_id(user_id).balance_nanos)


def test_an_entry_moves_the_balance_exactly_once_per_key(db_path: Path) -> None:
    user = create_user("ledger-once@example.com")
    first = post_entry(user.id, 1_500, "topup", "card", "topup:1")
    again = post_entry(user.id, 1_500, "topup", "card", "topup:1")
    assert first.created and not again.created
    assert again.entry.id == first.entry.id
    assert balance(user.id) == 1_500 == ledger_sum(user.id)
    assert LedgerEntry.select().where(LedgerEntry.user == user.id).count() == 1


def test_debits_may_go_negative_only_when_allowed(db_path: Path) -> None:
    user = create_user("ledger-negative@example.com")
    post_entry(user.id, 100, "admin", "start", "n:1")
    with pytest.raises(InvalidRequest) as caught:
        post_entry(user.id, -101, "admin", "too much", "n:2", allow_negative=False)
    assert caught.value.code == "negative_balance"
    assert balance(user.id) == 100
    assert LedgerEntry.get_or_none(LedgerEntry.idempotency_key == "n:2") is None
    post_entry(user.id, -100, "admin", "exactly all", "n:3", allow_negative=False)
    assert balance(user.id) == 0
    post_entry(user.id, -7, "usage", "a stream that ran over", "n:4")  # usage may overdraw
    assert balance(user.id) == -7 == ledger_sum(user.id)


@pytest.mark.parametrize(
    ("kind", "reason", "message"),
    [("gift", "x", "unknown ledger entry kind"), ("admin", "   ", "needs a reason")],
)
def test_entries_need_a_known_kind_and_a_reason(
    db_path: Path, kind: str, reason: str, message: str
) -> None:
    user = create_user(f"ledger-{kind}@example.com")
    with pytest.raises(InvalidRequest, match=message):
        post_entry(user.id, 5, kind, reason, f"k:{kind}")
    assert balance(user.id) == 0


def test_an_unknown_user_is_not_found(db_path: Path) -> None:
    with pytest.raises(NotFound):
        post_entry(999_999, 5, "admin", "ghost", "ghost:1")


def test_an_entry_inside_a_failed_transaction_leaves_nothing(db_path: Path) -> None:
    from codelace_box.billing.ledger import append_entry

    user = create_user("ledger-rollback@example.com")
    with pytest.raises(RuntimeError), write_transaction():
        append_entry(user.id, 50, "admin", "rolled back", "rb:1")
        raise RuntimeError("after the entry")
    assert balance(user.id) == 0
    assert LedgerEntry.get_or_none(LedgerEntry.idempotency_key == "rb:1") is None


def test_entries_for_is_newest_first(db_path: Path) -> None:
    user = create_user("ledger-order@example.com")
    for number in range(3):
        post_entry(user.id, number + 1, "admin", f"entry {number}", f"o:{number}")
    assert [e.amount_nanos for e in entries_for(user.id)] == [3, 2, 1]
    assert [e.amount_nanos for e in entries_for(user.id, limit=1)] == [3]


def test_find_mismatches_names_a_tampered_balance_and_hold_total(db_path: Path) -> None:
    good = create_user("ledger-good@example.com")
    bad = create_user("ledger-bad@example.com")
    held = create_user("ledger-held@example.com")
    for user in (good, bad, held):
        post_entry(user.id, 1_000, "admin", "seed", f"seed:{user.id}")
    assert find_mismatches() == []
    connection().execute('UPDATE "user" SET balance_nanos = 5000 WHERE id = ?', (bad.id,))
    with write_transaction():
        Hold.create(user=held.id, amount_nanos=300, request_id="req_orphan")
    found = {m.email: m for m in find_mismatches()}
    assert set(found) == {"ledger-bad@example.com", "ledger-held@example.com"}
    bad_row, held_row = found["ledger-bad@example.com"], found["ledger-held@example.com"]
    assert (bad_row.balance_nanos, bad_row.ledger_nanos) == (5000, 1000)
    assert (bad_row.held_nanos, bad_row.holds_nanos) == (0, 0)
    assert (held_row.held_nanos, held_row.holds_nanos) == (0, 300)
    assert (held_row.balance_nanos, held_row.ledger_nanos) == (1000, 1000)


def test_admin_adjustments_write_a_ledger_entry_and_a_payment(db_path: Path) -> None:
    create_user("ledger-admin@example.com")
    user, posting = adjust_balance("ledger-admin@example.com", "2.5", "goodwill")
    assert user.balance_nanos == 2_500_000_000
    assert (posting.entry.kind, posting.entry.reason) == ("admin", "goodwill")
    payment = Payment.get(Payment.user == user.id)
    assert (payment.kind, payment.status) == ("admin", "completed")
    assert payment.amount_nanos == 2_500_000_000
    with pytest.raises(InvalidRequest, match="below zero"):
        adjust_balance("ledger-admin@example.com", "-2.500000001", "too much")
    for amount in ("0", "abc", "0.0000000001", "1000000.01"):
        with pytest.raises(InvalidRequest):
            adjust_balance("ledger-admin@example.com", amount, "bad")
    for amount in ("1000000.01", "-1000000.01"):  # the bound holds either way
        with pytest.raises(InvalidRequest, match="at most 1,000,000 USD either way"):
            adjust_balance("ledger-admin@example.com", amount, "bad")
    assert balance(user.id) == 2_500_000_000
    assert Payment.select().where(Payment.user == user.id).count() == 1


POSTER = textwrap.dedent(
    """
    import sys
    from codelace_box.db.core import open_database
    from codelace_box.billing.ledger import post_entry
    open_database(sys.argv[1])
    created = 0
    for number in range(40):
        created += post_entry(1, 250, "topup", "race", f"race:{number}").created
    print(created)
    """
)


def test_the_same_keys_posted_by_racing_processes_count_once(db_path: Path) -> None:
    user = create_user("ledger-race@example.com")
    assert user.id == 1
    close_database()
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", POSTER, str(db_path)],
            stdout=subprocess.PIPE,
            text=True,
            env=cli_env(),
            cwd=REPO_ROOT,
        )
        for _ in range(3)
    ]
    created = [int(run.communicate(timeout=60)[0]) for run in runs]
    assert all(run.returncode == 0 for run in runs)
    assert sum(created) == 40
    open_database(db_path)
    assert balance(user.id) == 40 * 250 == ledger_sum(user.id)
    assert find_mismatches() == []


def test_a_removal_cannot_take_credit_that_requests_in_flight_reserved(db_path: Path) -> None:
    user = create_user("ledger-held@example.com")
    post_entry(user.id, 1_000, "admin", "start", "h:1")
    with write_transaction():
        Hold.create(user=user.id, amount_nanos=600, request_id="req_in_flight")
        User.update(held_nanos=600).where(User.id == user.id).execute()
    with pytest.raises(InvalidRequest) as caught:
        post_entry(user.id, -401, "admin", "too much", "h:2", allow_negative=False)
    assert caught.value.code == "negative_balance"
    assert balance(user.id) == 1_000
    post_entry(user.id, -400, "admin", "what is free", "h:3", allow_negative=False)
    assert balance(user.id) == 600
    assert find_mismatches() == []
