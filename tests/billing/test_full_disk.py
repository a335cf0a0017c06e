"""Stripe's webhook when the database's disk is full: the delivery fails with a 5xx (Stripe
retries it for days), nothing is half done, and the retry once there is room credits exactly
once. Needs a small tmpfs of its own (root, as CI runs): skipped where it cannot mount one."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.billing.conftest import BoxFactory
from tests.foundation.test_disk_trouble import _tmpfs, fill

pytestmark = pytest.mark.timeout(120)
NANOS = 1_000_000_000


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 4 MiB tmpfs, mounted until the module's boxes stopped and were audited."""
    yield from _tmpfs(tmp_path_factory.mktemp("full"), "4M")


def test_a_paid_session_delivered_while_the_disk_is_full_is_credited_once_on_retry(
    small_disk: Path, billing_box_factory: BoxFactory
) -> None:
    box = billing_box_factory(database={"path": str(small_disk / "codelace.db")})
    buyer = box.customer()
    session_id = box.start_topup(buyer, 20)
    event = box.double.complete(session_id)
    with sqlite3.connect(small_disk / "codelace.db") as db:  # the credit must grow the WAL: a
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # WAL started over takes it in its room
    ballast = fill(small_disk)
    refused = box.deliver(event)
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "database_unavailable"
    ballast.unlink()
    assert box.payment_status(session_id) == "pending"
    assert box.balance_nanos(buyer) == 0
    for result in ("credited", "duplicate"):
        delivered = box.deliver(event)
        assert delivered.status_code == 200, delivered.text
        assert delivered.json()["result"] == result
    assert box.balance_nanos(buyer) == 20 * NANOS
    assert box.payment_status(session_id) == "completed"
    assert "Traceback" not in box.server.log_text()
