"""Running totals and rollups against a real box: after mixed traffic (plain, streamed, failed,
abandoned, with prompt-cache tokens, on two keys) they (an account's days too) equal the sums of
the usage rows, the
customer's /usage reads them, and retention deleting rows leaves every total as it was."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, Box, BoxFactory
from tests.pg_cluster import wanted_engine, write_config_db
from tests.support import run_cli

HELLO = [{"role": "user", "content": "Say hello"}]
TALLY = (
    "COUNT(*), SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END), SUM(input_tokens), "
    "SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cost_nanos)"
)
COLUMNS = (
    "requests, errors, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
    "cost_nanos"
)
_SUMMED = ", ".join(f"SUM({c})" for c in COLUMNS.split(", "))


def _traffic(box: Box, fake: FakeOpenAI, key: str, other_key: str) -> None:
    with box.http(key) as http:
        fake.push(Reply(prompt_tokens=40, cached_tokens=25, completion_tokens=9))
        assert http.post(
            "/v1/chat/completions", json={"model": MODEL, "messages": HELLO}
        ).is_success
        fake.push(Reply(pieces=["one", " two", " three"]))
        body = {"model": MODEL, "messages": HELLO, "stream": True}
        assert http.post("/v1/chat/completions", json=body).is_success
        fake.push(Reply(status=400, error={"message": "bad", "type": "invalid_request_error"}))
        assert (
            http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO}).status_code
            >= 400
        )
        fake.push(Reply(delay_before=0.8, prompt_tokens=13, completion_tokens=21))
        with pytest.raises(httpx.ReadTimeout):
            http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO}, timeout=0.3)
    with box.http(other_key) as http:
        fake.push(Reply(prompt_tokens=7, completion_tokens=3))
        assert http.post(
            "/v1/chat/completions", json={"model": MODEL, "messages": HELLO}
        ).is_success


def _settled(box: Box, email: str, count: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = box.query(
            'SELECT COUNT(*) FROM usage_record r JOIN "user" u ON u.id = r.user_id '
            "WHERE u.email = ?",
            email,
        )
        if rows[0][0] >= count and box.balance(email)[1] == 0:
            return
        time.sleep(0.05)
    raise AssertionError("the traffic never settled")


def _ints(row: tuple[Any, ...]) -> tuple[int, ...]:
    return tuple(int(v or 0) for v in row)


def _check_totals_equal_rows(box: Box) -> None:
    for table, key in (("account_usage", "user_id"), ("key_usage", "api_key_id")):
        kept = {r[0]: _ints(r[1:]) for r in box.query(f"SELECT {key}, {COLUMNS} FROM {table}")}
        summed = {
            r[0]: _ints(r[1:])
            for r in box.query(
                f"SELECT {key}, {TALLY} FROM usage_record WHERE {key} IS NOT NULL GROUP BY {key}"
            )
        }
        assert kept == summed and kept, table
    postgres = wanted_engine() == "postgres"
    for period, size, form in (("minute", 16, "YYYY-MM-DD HH24:MI"), ("day", 10, "YYYY-MM-DD")):
        bucket = f"to_char(created_at, '{form}')" if postgres else f"substr(created_at, 1, {size})"
        kept = {
            (r[0], r[1]): _ints(r[2:])
            for r in box.query(
                f"SELECT bucket, model, {COLUMNS} FROM usage_rollup WHERE period = ?", period
            )
        }
        summed = {
            (r[0], r[1]): _ints(r[2:])
            for r in box.query(f"SELECT {bucket}, model, {TALLY} FROM usage_record GROUP BY 1, 2")
        }
        assert kept == summed and kept, period
    day = "to_char(created_at, 'YYYY-MM-DD')" if postgres else "substr(created_at, 1, 10)"
    kept = {
        (r[0], r[1]): _ints(r[2:])
        for r in box.query(f"SELECT user_id, day, {_SUMMED} FROM key_day_usage GROUP BY 1, 2")
    }
    summed = {
        (r[0], r[1]): _ints(r[2:])
        for r in box.query(f"SELECT user_id, {day}, {TALLY} FROM usage_record GROUP BY 1, 2")
    }
    assert kept == summed and kept, "an account's days: its keys' days"
    kept = {
        (r[0], r[1], r[2]): _ints(r[3:])
        for r in box.query(f"SELECT api_key_id, day, user_id, {COLUMNS} FROM key_day_usage")
    }
    summed = {
        (r[0], r[1], r[2]): _ints(r[3:])
        for r in box.query(
            f"SELECT COALESCE(api_key_id, 0), {day}, user_id, {TALLY} FROM usage_record "
            "GROUP BY 1, 2, 3"
        )
    }
    assert kept == summed and kept, "key_day_usage"


def test_totals_and_rollups_equal_the_rows_and_survive_retention(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    box = box_factory()
    email, key = box.new_user("5")
    other_key = box.cli("keys", "create", email, "--name", "ci").strip().splitlines()[0]
    _traffic(box, fake, key, other_key)
    _settled(box, email, 5)
    statuses = {r[0] for r in box.query("SELECT status FROM usage_record")}
    assert statuses == {"ok", "error", "abandoned"}
    assert box.query("SELECT SUM(stream), SUM(cache_read_tokens) FROM usage_record") == [(1, 25)]
    _check_totals_equal_rows(box)

    with box.http(key) as http:
        before = http.get("/api/v1/customer/usage").json()
    summed = box.query(
        "SELECT COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost_nanos) FROM usage_record"
    )[0]
    assert (before["request_count"], before["total_input_token"], before["total_output_token"]) == (
        summed[0], summed[1], summed[2],
    )  # fmt: skip
    assert round(before["total_cost_usd"] * 1e9) == summed[3]
    assert len(before["recent_requests"]) == 5

    exported = run_cli(box.config, "usage", "export", "--format", "jsonl", "--user", email)
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    assert sorted(r["request_id"] for r in records) == sorted(
        r["id"] for r in before["recent_requests"]
    )
    as_csv = run_cli(box.config, "usage", "export", "--format", "csv", "--since", "1h")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["request_id"] for r in rows] == [r["request_id"] for r in records]
    assert sum(int(r["cost_nanos"]) for r in rows) == summed[3]

    ledger_before = box.query("SELECT COUNT(*), SUM(amount_nanos) FROM ledger_entry")
    _age_rows_and_restart_with_retention(box)
    assert box.query("SELECT COUNT(*) FROM usage_record") == [(0,)]
    assert box.query("SELECT COUNT(*), SUM(amount_nanos) FROM ledger_entry") == ledger_before
    with box.http(key) as http:
        after = http.get("/api/v1/customer/usage").json()
    assert {k: v for k, v in after.items() if k != "recent_requests"} == {
        k: v for k, v in before.items() if k != "recent_requests"
    }
    assert after["recent_requests"] == []
    box.cli("doctor")


def _age_rows_and_restart_with_retention(box: Box) -> None:
    """Make every usage row 40 days old, then serve again with usage.retention_days = 30."""
    box.server.stop()
    aged = (
        "created_at - INTERVAL '40 days'"
        if wanted_engine() == "postgres"
        else "datetime(created_at, '-40 days')"
    )
    write_config_db(box.config, f"UPDATE usage_record SET created_at = {aged}")
    text = box.config.read_text()
    box.config.write_text(text + "\n[usage]\nretention_days = 30\n")
    box.server.start()
    deadline = time.monotonic() + 15
    while box.query("SELECT COUNT(*) FROM usage_record") != [(0,)]:
        assert time.monotonic() < deadline, "retention never deleted the old rows"
        time.sleep(0.1)
