"""A checkout URL is shown once, and the pending payment recorded before it is what a paid
session is credited against: on PostgreSQL (whose sessions commit with synchronous_commit =
off) a server crash right after the answer must not lose it, or the user pays and the webhook
finds no payment (acknowledged as a session of someone else's, never retried). Likewise an
operator's `credit`, reported done. So every transaction that writes a payment row, or a
credit to the ledger, commits with synchronous_commit = on.

Seen from the server: a cluster of this test's own logs every statement; in each session,
every INSERT into payment or ledger_entry must come after a `SET LOCAL synchronous_commit =
on` of the same transaction.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests import pg_cluster
from tests.billing.conftest import SECRET_KEY, WEBHOOK_SECRET, stripe_section
from tests.fakes.stripe_double import StripeDouble
from tests.pg_cluster import (
    SHARED_SECRET,
    durable_inserts,
    query_config_db,
    wanted_engine,
)
from tests.support import TLS, ServerProcess, free_port, run_cli, write_config

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(wanted_engine() != "postgres", reason="PostgreSQL's commit setting"),
]


def test_every_payment_and_credit_is_committed_durably(
    logged_cluster: pg_cluster.TestCluster, tmp_path: Path
) -> None:
    double = StripeDouble(SECRET_KEY, WEBHOOK_SECRET).start()
    port = free_port()
    sections = {
        "server": {"host": "127.0.0.1", "port": port, "secret_key": SHARED_SECRET},
        "database": {
            "path": str(tmp_path / "data" / "box.db"),
            "url": logged_cluster.new_database(),
        },
        "stripe": stripe_section(double),
    }
    config = write_config(tmp_path / "codelace.toml", sections)
    server = ServerProcess(config, port).start()
    try:
        assert run_cli(config, "users", "create", "payer@durable.test").returncode == 0
        key = run_cli(config, "keys", "create", "payer@durable.test").stdout.split()[0]
        with httpx.Client(base_url=server.base_url, timeout=30, verify=TLS) as http:
            auth = {"authorization": f"Bearer {key}"}
            started = http.post("/api/v1/stripe/checkout", json={"amount_usd": 15}, headers=auth)
            assert started.status_code == 200, started.text  # 1: the pending payment
            session = double.session_by_url(started.json()["checkout_url"])
            body, headers = double.webhook(double.complete(session["id"]))
            paid = http.post("/api/v1/stripe/webhook", content=body, headers=headers)
            assert paid.json()["result"] == "credited", paid.text  # 2: the credit
        credited = run_cli(config, "credit", "payer@durable.test", "5", "--reason", "goodwill")
        assert credited.returncode == 0, credited.stderr  # 3, 4: the credit and its payment
    finally:
        server.stop()
        double.stop()
    assert query_config_db(config, "SELECT COUNT(*) FROM payment") == [(2,)]
    inserts = durable_inserts(logged_cluster, "payment", "ledger_entry")
    assert sorted(table for table, _ in inserts) == sorted(
        ["payment", "ledger_entry", "ledger_entry", "payment"]
    )
    assert all(durable for _, durable in inserts), inserts
    doctor = run_cli(config, "doctor")
    assert doctor.returncode == 0 and "MISMATCH" not in doctor.stdout, doctor.stdout
