"""An operator of the first release upgrades: data/first_wave.sql is a database that release's own
code made (its CLI and server, then killed mid-call), and this release migrates and serves it.
Everything its users had still works and reads as it did: their keys (the revoked one stays
revoked), balances, usage history, payments (ids now UUIDs, as the SPEC's second wave says),
the operator's provider keys (decrypted with the server secret of the time), the catalog;
the hold the killed call left is freed and doctor agrees. (test_migrations.py checks each
migration on rows the current code writes; this checks them on what the first release wrote.)"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from codelace_box.db.migrate import LATEST_VERSION, MIGRATIONS
from tests.acceptance.old_releases import box_from_dump, cli
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.fakes.stripe_wire import sign_payload
from tests.support import TLS, ServerProcess, free_port, is_uuid4, run_cli, sdk_http

pytestmark = pytest.mark.timeout(120)
DUMP = Path(__file__).parent / "data" / "first_wave.sql"
SECRET = "JSkHVTv98AqZBB4NUqfJ-h1It_I2jbu1VUolaaYIMqg"  # that box's server.secret_key
OPS = "cl_xeS0Q1gdd5b4f9djLQxtsqqIzTYQrYAkIvKHsIF7"  # made by `keys create`
DEV = "cl_cWxEiVEZzxmOBaTrMc3QdUSREQxY2hY2w5CfiKkd"  # minted by otp/verify
DEV_SECOND = "cl_Lm3ecVpmHC2VIOEdJ65hmEfgDBkYuJBMP33q0uhe"  # POST /api/v1/auth/key
REVOKED = "cl_eISNMeLUFUFoPYoxlXwzST4BUoxSeI3lGcwHl2e8"  # DELETE /api/v1/auth/key/2
# What /api/v1/customer/usage showed each user under the first release (newest first).
OPS_USAGE = {"request_count": 4, "total_input_token": 44, "total_output_token": 21,
             "total_cost_usd": 0.00030645}  # fmt: skip
OPS_RECENT = [
    ("req_f49241545a0a9ce65e0e700e", "error", 0.0, False),  # the upstream failed: no charge
    ("req_a9880cdcf5c03a6bf83d2669", "ok", 0.0003, False),  # anthropic/claude-sonnet-4-5
    ("req_bdd398cdcd5f99ed6bf5c89b", "ok", 2.85e-06, True),
    ("req_4dda0dd782305a6461ca2e60", "ok", 3.6e-06, False),
]


def dead_pid() -> int:
    """A pid no process of this host has."""
    for pid in range(4_194_303, 4_000_000, -1):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            continue
    raise AssertionError("no free pid")


def first_wave_box(root: Path, port: int) -> Path:
    """The first release's database and config (its secret) in root; returns the config."""

    def owned_here(connection: sqlite3.Connection) -> None:
        # the killed server was a process of this host (owner '<host>:<pid>', as it wrote it)
        connection.execute("UPDATE hold SET owner = ?", (f"{socket.gethostname()}:{dead_pid()}",))

    return box_from_dump(root, port, DUMP, SECRET, owned_here)


def get(base: str, path: str, key: str) -> Any:
    answer = httpx.get(
        base + path, headers={"authorization": f"Bearer {key}"}, timeout=10, verify=TLS
    )
    assert answer.status_code == 200, (path, answer.text)
    return answer.json()


def test_the_first_releases_database_upgrades_and_serves_its_users(tmp_path: Path) -> None:
    port = free_port()
    config = first_wave_box(tmp_path, port)
    migrated = cli(config, "migrate")
    applied = "; ".join(f"{v} {m.NAME}" for v, m in MIGRATIONS if v >= 3)
    assert migrated == f"migrated from schema version 2 to {LATEST_VERSION}: {applied}\n"
    assert applied.startswith("3 public uuids; 4 context tokens and usage holds; "), applied
    oa, an = FakeOpenAI().start(), FakeAnthropic(("sk-ant-one",)).start()
    cli(config, "providers", "update", "openai", "--base-url", oa.base_url)
    cli(config, "providers", "update", "anthropic", "--base-url", an.base_url)
    server = ServerProcess(config, port)
    try:
        server.start()
        base = server.base_url
        check_users_see_what_they_had(base)
        check_provider_keys_and_catalog(base, oa)
        assert "released 1 holds left by an earlier stop" in server.log_text()
        assert server.stop() == 0
    finally:
        server.stop()
        oa.stop()
        an.stop()
    assert cli(config, "doctor").startswith(f"ok: schema version {LATEST_VERSION}")
    users = {u["email"]: u for u in json.loads(cli(config, "users", "list", "--json"))}
    assert {email: (u["status"], u["held_usd"]) for email, u in users.items()} == {
        "ops@example.com": ("active", 0.0),
        "gone@example.com": ("disabled", 0.0),
        "dev@example.com": ("active", 0.0),
    }


def check_users_see_what_they_had(base: str) -> None:
    me = get(base, "/api/v1/auth/me", OPS)
    assert me["email"] == "ops@example.com" and is_uuid4(me["id"])
    assert get(base, "/api/v1/customer/balance", OPS) == {"credit_balance_usd": 23.49969355}
    usage = get(base, "/api/v1/customer/usage", OPS)
    assert {k: usage[k] for k in OPS_USAGE} == OPS_USAGE
    recent = [(r["id"], r["status"], r["cost_usd"], r["stream"]) for r in usage["recent_requests"]]
    assert recent == OPS_RECENT
    payments = get(base, "/api/v1/customer/payment", OPS)
    assert [(p["amount_usd"], p["kind"], p["status"]) for p in payments] == [
        (-1.5, "admin", "completed"), (25.0, "admin", "completed"),
    ]  # fmt: skip
    assert [(k["name"], k["key_prefix"]) for k in get(base, "/api/v1/auth/key", OPS)] == [
        ("laptop", "cl_xeS0")
    ]
    revoked = httpx.get(base + "/api/v1/customer/balance",
                        headers={"authorization": f"Bearer {REVOKED}"}, verify=TLS)  # fmt: skip
    assert revoked.status_code == 401
    assert get(base, "/api/v1/customer/balance", DEV) == {"credit_balance_usd": 20.9999925}
    payments = get(base, "/api/v1/customer/payment", DEV)
    assert [(p["amount_usd"], p["kind"], p["status"]) for p in payments] == [
        (12.0, "topup", "pending"), (15.0, "topup", "expired"),
        (20.0, "topup", "completed"), (1.0, "trial", "completed"),
    ]  # fmt: skip
    assert all(is_uuid4(p["id"]) for p in payments) and len({p["id"] for p in payments}) == 4
    keys = {k["name"]: k for k in get(base, "/api/v1/auth/key", DEV)}
    assert sorted(keys) == ["login-2026-12-03", "second"]
    assert all(is_uuid4(key["id"]) for key in keys.values())
    assert get(base, "/api/v1/customer/balance", DEV_SECOND)["credit_balance_usd"] == 20.9999925
    gone = httpx.delete(f"{base}/api/v1/auth/key/{keys['second']['id']}",
                        headers={"authorization": f"Bearer {DEV}"}, verify=TLS)  # fmt: skip
    assert gone.status_code == 204
    after = httpx.get(base + "/api/v1/customer/balance",
                      headers={"authorization": f"Bearer {DEV_SECOND}"}, verify=TLS)  # fmt: skip
    assert after.status_code == 401


def check_provider_keys_and_catalog(base: str, oa: FakeOpenAI) -> None:
    models = httpx.get(base + "/v1/models", verify=TLS).json()["data"]
    assert sorted(m["id"] for m in models) == ["anthropic/claude-sonnet-4-5", "openai/gpt-4o-mini"]
    client = openai.OpenAI(
        base_url=base + "/v1", api_key=OPS, max_retries=0, http_client=sdk_http(openai)
    )
    oa.push(Reply(content="after the upgrade", prompt_tokens=12, completion_tokens=3))
    answer = client.chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert answer.usage is not None and answer.usage.cost_usd == 3.6e-06  # type: ignore[attr-defined]
    assert [r.api_key for r in oa.requests] in (["sk-openai-one"], ["sk-openai-two"])
    answer = client.chat.completions.create(  # the fake takes only the key the operator stored
        model="anthropic/claude-sonnet-4-5", max_tokens=50,
        messages=[{"role": "user", "content": "hi"}],
    )  # fmt: skip
    assert answer.choices[0].message.content
    assert get(base, "/api/v1/customer/balance", OPS)["credit_balance_usd"] < 23.49969355
    client.close()


def test_audit_before_the_upgrade_is_migrated_says_so_in_one_line(tmp_path: Path) -> None:
    """An operator who swapped the binary and ran `codelace-box audit` before anything migrated
    the database (the first release had no audit log) got `error: unexpected SQLError: no such
    table: audit_log`. The command reads without changing the file (README: it also lists a
    replaced database's log), so it says what the file is and what to run, in one line."""
    config = first_wave_box(tmp_path, free_port())
    for args in (("audit",), ("audit", "--json"), ("audit", "--since", "7d")):
        result = run_cli(config, *args)
        assert result.returncode == 1, (args, result.stdout)
        (line,) = result.stderr.strip().splitlines()
        assert "unexpected" not in line and "schema version 2" in line, line
        assert "codelace-box migrate" in line, line
    assert cli(config, "migrate", "--status").startswith("schema version 2 ")
    cli(config, "migrate")
    listed = json.loads(cli(config, "audit", "--json"))
    assert [entry["command"] for entry in listed] == ["migrate"]


def test_a_command_that_upgrades_the_database_says_so(tmp_path: Path) -> None:
    """The schema moves one way: once migrated, the first release refuses the database (a
    rollback is a restore). An operator who looked with the new binary (`users list`) before
    deciding, or whose restarted `serve` migrated it, was told nothing: the command printed its
    list, the server's log only that it serves. Each now says it, once, on stderr / in the log;
    stdout stays the command's own."""
    port = free_port()
    config = first_wave_box(tmp_path, port)
    listed = run_cli(config, "users", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "ops@example.com" in {u["email"] for u in json.loads(listed.stdout)}
    notice = listed.stderr.strip()
    assert notice.startswith("migrated the database from schema version 2 to "
                             f"{LATEST_VERSION}"), listed.stderr  # fmt: skip
    assert "restore" in notice and len(listed.stderr.splitlines()) == 1
    assert run_cli(config, "users", "list").stderr == ""  # nothing to say the second time
    served = first_wave_box(tmp_path / "served", port)
    server = ServerProcess(served, port)
    try:
        server.start()
        assert f"migrated the database from schema version 2 to {LATEST_VERSION}" in (
            server.log_text()
        )
    finally:
        server.stop()


def test_a_failing_command_that_upgraded_the_database_still_says_one_line(tmp_path: Path) -> None:
    """An error stays one line on stderr; it names the migration it came after."""
    config = first_wave_box(tmp_path, free_port())
    result = run_cli(config, "users", "show", "nobody@example.com")
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ") and "migrated the database" in result.stderr


PENDING_SESSION = "cs_test_71437725899eeb7e2654c9c1"  # dev's $12 top-up, pending in the dump


def _paid_event(event_id: str) -> dict[str, Any]:
    """checkout.session.completed for the pending top-up, as Stripe sends it: the session as
    the first release created it (integer user id in its reference and metadata)."""
    session = {"id": PENDING_SESSION, "object": "checkout.session", "mode": "payment",
               "status": "complete", "payment_status": "paid", "amount_total": 1200,
               "currency": "usd", "client_reference_id": "3", "payment_intent": "pi_fw_12",
               "metadata": {"user_id": "3", "kind": "topup"}}  # fmt: skip
    return {"id": event_id, "object": "event", "type": "checkout.session.completed",
            "livemode": False, "data": {"object": session}}  # fmt: skip


def test_a_top_up_pending_at_the_upgrade_is_credited_once_to_its_account(tmp_path: Path) -> None:
    """Stripe's webhook for a checkout started under the first release arrives after the
    upgrade (ids are UUIDs now): the right account is credited, once, however often it comes."""
    port = free_port()
    config = first_wave_box(tmp_path, port)
    whsec = "whsec_first_wave_upgrade"
    config.write_text(config.read_text() + f'[stripe]\nsecret_key = "sk_test_fw"\n'
                      f'webhook_secret = "{whsec}"\napi_base = "http://127.0.0.1:9"\n')  # fmt: skip
    server = ServerProcess(config, port)
    try:
        server.start()
        base = server.base_url
        for event_id in ("evt_fw_paid", "evt_fw_paid", "evt_fw_paid_again"):
            body = json.dumps(_paid_event(event_id)).encode()
            headers = {"stripe-signature": sign_payload(body, whsec, int(time.time())),
                       "content-type": "application/json"}  # fmt: skip
            answer = httpx.post(
                base + "/api/v1/stripe/webhook", content=body, headers=headers, verify=TLS
            )
            assert answer.status_code == 200, answer.text
        assert get(base, "/api/v1/customer/balance", DEV) == {"credit_balance_usd": 32.9999925}
        assert get(base, "/api/v1/customer/balance", OPS) == {"credit_balance_usd": 23.49969355}
        paid = [p for p in get(base, "/api/v1/customer/payment", DEV) if p["amount_usd"] == 12]
        assert [(p["status"], is_uuid4(p["id"])) for p in paid] == [("completed", True)]
    finally:
        server.stop()
    assert cli(config, "doctor").startswith(f"ok: schema version {LATEST_VERSION}")
