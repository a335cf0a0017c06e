"""`doctor`'s check of each call: a usage row's cost against its ledger debit (`usage:<request
id>`), on SQLite and on PostgreSQL (CODELACE_TEST_DATABASE=postgres)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from codelace_box.db.models import UsageRecord
from codelace_box.reports.totals_check import CALLS_LISTED
from tests.acceptance.cli_tools import Box
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.foundation.conftest import one_error_line
from tests.foundation.test_disk_trouble import metered_box
from tests.observability.test_audit_at_scale import peak_mb
from tests.pg_cluster import query_config_db, write_config_db
from tests.support import TLS, ServerProcess, run_cli

pytestmark = pytest.mark.timeout(120)


def test_doctor_names_a_call_whose_cost_differs_from_its_ledger_debit(tmp_path: Path) -> None:
    """Two calls' debits moved between them by hand (or by a bug) kept every sum right, so
    doctor, which compared only sums (balances, totals, days), said ok: each call is now
    compared, and a row with cost but no debit found."""
    fake = FakeOpenAI().start()
    space, port, key = metered_box(tmp_path / "box", fake.base_url)
    server = ServerProcess(space.config, port)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    body = {"model": "fake/m", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {key}"}
    try:
        server.start()
        for tokens in (100, 300):  # two calls of different costs
            fake.push(Reply(prompt_tokens=tokens, completion_tokens=tokens))
            answer = httpx.post(url, json=body, headers=headers, timeout=30, verify=TLS)
            assert answer.status_code == 200, answer.text
    finally:
        server.stop()
        fake.stop()
    assert space.run("doctor").stdout.startswith("ok: ")
    rows = query_config_db(
        space.config, "SELECT request_id, cost_nanos FROM usage_record ORDER BY id"
    )
    [(first, first_cost), (second, second_cost)] = rows
    assert (first_cost, second_cost) == (300_000, 900_000)
    moved = "UPDATE ledger_entry SET amount_nanos = amount_nanos + ? WHERE idempotency_key = ?"
    write_config_db(space.config, moved, (-1000, f"usage:{first}"))
    write_config_db(space.config, moved, (1000, f"usage:{second}"))
    found = run_cli(space.config, "doctor")
    assert found.returncode == 1, found.stdout
    assert one_error_line(found.stderr) == "error: doctor found 2 problem(s)"
    [uuid] = query_config_db(space.config, 'SELECT uuid FROM "user"')[0]
    owner = f"account full@example.com (id {uuid})"
    assert found.stdout.splitlines() == [
        f"MISMATCH call {first} of {owner}: usage row cost $0.000300000 != ledger debit "
        "$0.000301000",
        f"MISMATCH call {second} of {owner}: usage row cost $0.000900000 != ledger debit "
        "$0.000899000",
    ], found.stdout
    write_config_db(space.config, moved, (1000, f"usage:{first}"))
    write_config_db(space.config, moved, (-1000, f"usage:{second}"))
    assert space.run("doctor").stdout.startswith("ok: ")
    renamed = "UPDATE ledger_entry SET idempotency_key = ? WHERE idempotency_key = ?"
    write_config_db(space.config, renamed, ("usage:elsewhere", f"usage:{second}"))
    for n in range(CALLS_LISTED):  # rows with a cost and no debit at all
        _copy_row(space.config, first, f"copy-{n:02}")
    found = run_cli(space.config, "doctor")
    lines = found.stdout.splitlines()
    assert found.returncode == 1 and len(lines) == CALLS_LISTED + 1, found.stdout
    assert lines[0] == (
        f"MISMATCH call {second} of {owner}: usage row cost $0.000900000 != ledger debit none"
    )
    assert lines[1] == (
        f"MISMATCH call copy-00 of {owner}: usage row cost $0.000300000 != ledger debit none"
    )
    assert lines[-1] == (
        "MISMATCH 1 more call(s) whose usage row cost differs from its ledger debit"
    )


def _copy_row(config: Path, request_id: str, new_id: str) -> None:
    """A copy of a usage row under another request id (as a bug might write one)."""
    columns = ", ".join(
        f'"{field.column_name}"'
        for field in UsageRecord._meta.sorted_fields
        if field.name not in ("id", "request_id")
    )
    write_config_db(
        config,
        f"INSERT INTO usage_record (request_id, {columns}) "
        f"SELECT ?, {columns} FROM usage_record WHERE request_id = ?",
        (new_id, request_id),
    )


_MANY_CALLS_SQL = """
WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO usage_record (request_id, user_id, api_key_id, model, provider, upstream_model,
  input_tokens, output_tokens, input_per_1m_nanos, output_per_1m_nanos, cost_nanos, hold_nanos,
  status, error_code, stream, estimated, duration_ms, created_at, route, cache_read_tokens,
  cache_write_tokens, cache_write_1h_tokens, cache_read_per_1m_nanos, cache_write_per_1m_nanos,
  cache_write_1h_per_1m_nanos)
SELECT printf('req_%012d', i), 1, NULL, 'm', 'p', 'm', 1, 1, 0, 0, 5, 5, 'ok', NULL, 0, 0, 1,
  '2026-01-01 00:00:00', '/v1/chat/completions', 0, 0, 0, 0, 0, 0
FROM n
"""


def test_doctor_counts_the_calls_it_does_not_name_without_holding_them(tmp_path: Path) -> None:
    """doctor names the first 20 calls whose cost differs from their debit and counts the
    rest: the count (a window over every differing call) held them all in SQLite's memory,
    40-70 MB a million (usage rows restored without their ledger, say). Counted apart now."""
    box = Box.create(tmp_path)
    box.ok("users", "create", "many@example.com")
    box.sql(_MANY_CALLS_SQL, (1, 150_000))  # past SQLite's 16 MB page cache already
    few = peak_mb(box.config, "doctor", status=1)
    box.sql(_MANY_CALLS_SQL, (150_001, 450_000))
    many = peak_mb(box.config, "doctor", status=1)
    found = box.cli("doctor")
    assert f"{450_000 - CALLS_LISTED} more call(s) whose usage row cost differs" in found.stdout
    assert found.stdout.count("MISMATCH call req_") == CALLS_LISTED
    # measured for the 300,000 more: +11 MB with the window; +0 counted apart
    assert many - few < 6, (few, many)
