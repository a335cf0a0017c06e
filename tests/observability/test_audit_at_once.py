"""The audit log on PostgreSQL when admin changes of one account run at once (two operators,
two boxes): each entry's before is the state its change started from, never one that another
change had already left behind."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal
from pathlib import Path
from subprocess import CompletedProcess

import psycopg
import pytest

from tests.pg_cluster import SHARED_SECRET
from tests.support import run_cli, write_config

pytestmark = pytest.mark.timeout(120)
EMAIL = "at-once@audit.test"
LOCK_WAITS = (
    "SELECT COUNT(*) FROM pg_stat_activity "
    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
)


def _waiting_for_locks(url: str, count: int) -> None:
    """Wait until `count` sessions wait for a lock (the commands are blocked where they are)."""
    deadline = time.monotonic() + 60
    with psycopg.connect(url, autocommit=True) as look:
        while (look.execute(LOCK_WAITS).fetchone() or (0,))[0] < count:
            assert time.monotonic() < deadline, f"{count} sessions never waited for a lock"
            time.sleep(0.05)


def test_two_credits_of_one_account_at_once_each_record_the_balance_they_changed(
    tmp_path: Path, pg_url: str
) -> None:
    config = write_config(
        tmp_path / "codelace.toml",
        {
            "server": {"secret_key": SHARED_SECRET},
            "database": {"path": str(tmp_path / "data" / "codelace.db"), "url": pg_url},
        },
    )
    for args in (("users", "create", EMAIL), ("credit", EMAIL, "10", "--reason", "start")):
        assert run_cli(config, *args).returncode == 0
    done: list[CompletedProcess[str]] = []
    with psycopg.connect(pg_url) as other:  # another writer of the account's row, for a while
        other.execute('SELECT 1 FROM "user" WHERE email = %s FOR UPDATE', (EMAIL,))
        credits = [
            threading.Thread(
                target=lambda n=n: done.append(
                    run_cli(config, "credit", EMAIL, "5", "--reason", f"at once {n}")
                )
            )
            for n in range(2)
        ]
        for credit in credits:
            credit.start()
        _waiting_for_locks(pg_url, 2)  # both commands started, each waiting for its turn
        other.rollback()
    for credit in credits:
        credit.join()
    assert [r.returncode for r in done] == [0, 0], [r.stderr for r in done]
    entries = json.loads(run_cli(config, "audit", "--json").stdout)
    changes = [
        (Decimal(e["before"]["balance_usd"]), Decimal(e["after"]["balance_usd"]))
        for e in entries
        if e["command"] == "credit" and e["before"] is not None
    ]
    assert sorted(changes) == [(Decimal(0), Decimal(10)), (Decimal(10), Decimal(15)),
                               (Decimal(15), Decimal(20))]  # fmt: skip
    assert run_cli(config, "doctor").returncode == 0
