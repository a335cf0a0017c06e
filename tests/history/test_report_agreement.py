"""`usage report` against the ledger and the usage rows, on either engine: real traffic on two
keys (one then revoked) of two accounts, cache tokens, a failed call; every group's spend is
what the ledger debited to the nano-dollar, a revoked key keeps its line, and the window's
edges are UTC instants (a row at 23:59:59.9 is the day before, one at 00:00 the day of)."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, Box, BoxFactory
from tests.pg_cluster import wanted_engine, write_config_db
from tests.support import run_cli

HELLO = [{"role": "user", "content": "Say hello"}]


def _chat(box: Box, key: str, reply: Reply, ok: bool = True) -> None:
    box.fake.push(reply)
    with box.http(key) as http:
        answer = http.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
    assert answer.is_success == ok, answer.text


def _report(box: Box, *args: str) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(box.cli("usage", "report", "--json", *args))
    return shown


def _nanos(usd: float) -> int:
    return round(usd * 1_000_000_000)


def _debited(box: Box, email: str) -> int:
    (total,) = box.query(
        "SELECT COALESCE(-SUM(l.amount_nanos), 0) FROM ledger_entry l "
        "JOIN \"user\" u ON u.id = l.user_id WHERE u.email = ? AND l.kind = 'usage'",
        email,
    )[0]
    return int(total)


def test_report_spend_is_the_ledger_s_and_revoked_keys_keep_their_line(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    box = box_factory()
    heavy, heavy_key = box.new_user("5")
    light, light_key = box.new_user("5")
    second = box.cli("keys", "create", heavy, "--name", "ci").strip().splitlines()[0]
    _chat(box, heavy_key, Reply(prompt_tokens=4000, cached_tokens=3000, completion_tokens=77))
    _chat(box, second, Reply(prompt_tokens=333, completion_tokens=7))
    _chat(box, light_key, Reply(prompt_tokens=11, completion_tokens=1))
    error = {"message": "bad", "type": "invalid_request_error"}
    _chat(box, light_key, Reply(status=400, error=error), ok=False)
    key_id = next(k["id"] for k in json.loads(box.cli("keys", "list", heavy, "--json"))
                  if k["name"] == "ci")  # fmt: skip
    box.cli("keys", "revoke", key_id)

    by_user = {r["user"]: r for r in _report(box, "--by", "user")["rows"]}
    for email, requests, errors in ((heavy, 2, 0), (light, 2, 1)):
        row = by_user[email]
        assert (row["requests"], row["errors"]) == (requests, errors)
        assert _nanos(row["spend_usd"]) == _debited(box, email) > 0, email
    by_key = _report(box, "--by", "key")["rows"]
    revoked = [r for r in by_key if r["key_id"] == key_id]
    assert len(revoked) == 1 and revoked[0]["requests"] == 1 and "ci" in revoked[0]["owner"]
    assert second.startswith(revoked[0]["key"])
    by_model = _report(box, "--by", "model")
    assert by_model["total"]["requests"] == sum(r["requests"] for r in by_model["rows"])
    assert _nanos(by_model["total"]["spend_usd"]) == sum(
        _debited(box, e) for e in {r["user"] for r in _report(box)["rows"]}
    )
    box.cli("doctor")


def _recount_days(box: Box) -> None:
    """The day totals moved with the rows the test moved in time (the settlement counted them
    into the day they were written on): the report reads whole days from them."""
    postgres = wanted_engine() == "postgres"
    day = "to_char(created_at, 'YYYY-MM-DD')" if postgres else "substr(created_at, 1, 10)"
    figures = (
        "COUNT(*), SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END), SUM(input_tokens), "
        "SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cost_nanos)"
    )
    columns = (
        "requests, errors, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, "
        "cost_nanos"
    )
    write_config_db(box.config, "DELETE FROM key_day_usage")
    write_config_db(box.config, "DELETE FROM usage_rollup WHERE period = 'day'")
    write_config_db(
        box.config,
        f"INSERT INTO key_day_usage (user_id, day, api_key_id, {columns}) "
        f"SELECT user_id, {day}, COALESCE(api_key_id, 0), {figures} FROM usage_record "
        f"GROUP BY user_id, {day}, COALESCE(api_key_id, 0)",
    )
    write_config_db(
        box.config,
        f"INSERT INTO usage_rollup (period, bucket, model, {columns}) "
        f"SELECT 'day', {day}, model, {figures} FROM usage_record GROUP BY {day}, model",
    )


def test_the_window_edges_are_utc_instants(box_factory: BoxFactory, fake: FakeOpenAI) -> None:
    box = box_factory()
    email, key = box.new_user("5")
    for tokens in (10, 20, 30):
        _chat(box, key, Reply(prompt_tokens=tokens, completion_tokens=1))
    moments = ("2028-02-29 23:59:59.900000", "2028-03-01 00:00:00", "2028-03-31 23:59:59.999999")
    user = box.query('SELECT id FROM "user" WHERE email = ?', email)[0][0]
    rows = box.query("SELECT id FROM usage_record WHERE user_id = ? ORDER BY id", user)
    ids = [r[0] for r in rows]
    cast = "CAST(? AS TIMESTAMP)" if wanted_engine() == "postgres" else "?"
    update = f"UPDATE usage_record SET created_at = {cast} WHERE id = ?"
    for row_id, moment in zip(ids, moments, strict=True):
        write_config_db(box.config, update, (moment, row_id))
    _recount_days(box)

    def requests(*window: str) -> int:
        rows = [r for r in _report(box, *window)["rows"] if r["user"] == email]
        return int(rows[0]["requests"]) if rows else 0

    assert requests("--since", "2028-02-29", "--until", "2028-03-01") == 1  # leap day
    assert requests("--since", "2028-03-01", "--until", "2028-04-01") == 2  # 31 days
    assert requests("--since", "2028-03-01T00:00:00Z", "--until", "2028-03-01T00:00:01Z") == 1
    offset = ("--since", "2028-03-01T01:00+01:00", "--until", "2028-03-01T01:00:01+01:00")
    assert requests(*offset) == 1
    assert requests("--since", "2028-02-29T23:59:59.95", "--until", "2028-03-01") == 0
    assert requests("--since", "2028-03-31T23:59:59.999999", "--until", "2028-04-01") == 1
    assert requests("--since", "9999-12-31T12:00") == 0  # far future, no end given: empty
    assert requests("--until", "1960-01-01") == 0  # far past, no start given: empty
    bad = run_cli(box.config, "usage", "report", "--since", "2027-02-29")  # not a leap year
    assert bad.returncode != 0 and "'--since': '2027-02-29'" in bad.stderr
