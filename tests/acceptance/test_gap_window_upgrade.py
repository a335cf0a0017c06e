"""An operator who installed main during the 39 minutes (2026-12-02 10:02-10:41 UTC) when the
portal's sessions were migration 12, with no 11, upgrades: data/gap_window.sql is a database
that code made (its CLI and server). Its schema_migration says (12, 'portal sessions'); today
that is migration 11, and 12 is the key rows. The upgrade applies the key rows and everything
after, not the portal's sessions again, `migrate --status` says what is really pending, and
the users' keys (one with a budget) and the operator's provider keys still work."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from codelace_box.db.migrate import LATEST_VERSION, MIGRATIONS
from tests.acceptance.old_releases import box_from_dump, cli
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.support import TLS, ServerProcess, free_port, run_cli, sqlite_rows

pytestmark = pytest.mark.timeout(120)
DUMP = Path(__file__).parent / "data" / "gap_window.sql"
SECRET = "h8jNojSwaP1-rm3fiSYPl-wMK7V2M2yogWv6iRRm64g"  # that box's server.secret_key
OPS = "cl_0HOx2KU2N40s9ZYEv4AQf73l5PHPXPMVA9OUb5Jc"  # laptop, no budget
CAPPED = "cl_DelTLFzdwErwFmPNOyvPRLtNttgFDTc7zlXbrdl6"  # dev's, 5 USD a day
HI = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def gap_window_box(root: Path, port: int) -> Path:
    """That release's database and config (its secret) in root; returns the config."""
    return box_from_dump(root, port, DUMP, SECRET)


def test_migrate_status_says_what_is_pending_on_a_database_of_the_gap(tmp_path: Path) -> None:
    """It said 'schema version 12' and 'pending: 11 portal sessions' (applied, as 12) and
    left out that 12, the key rows, was not."""
    config = gap_window_box(tmp_path, free_port())
    lines = cli(config, "migrate", "--status").splitlines()
    assert lines[0] == f"schema version 11 (this codelace-box knows up to {LATEST_VERSION})"
    assert lines[1:] == [f"pending: {v} {m.NAME}" for v, m in MIGRATIONS if v >= 12]
    doctor = run_cli(config, "doctor")
    assert f"schema version 11, expected {LATEST_VERSION} (run migrate)" in doctor.stdout


def test_a_database_of_the_gap_upgrades_and_serves_its_users(tmp_path: Path) -> None:
    """migrate failed with 'unexpected OperationalError: table "portal_session" already
    exists' (it applied 11 again), and would have skipped 12, the key rows."""
    port = free_port()
    config = gap_window_box(tmp_path, port)
    applied = "; ".join(f"{v} {m.NAME}" for v, m in MIGRATIONS if v >= 12)
    assert cli(config, "migrate") == (
        f"migrated from schema version 11 to {LATEST_VERSION}: {applied}\n"
    )
    recorded = sqlite_rows(
        tmp_path / "data" / "codelace.db", "SELECT version, name FROM schema_migration"
    )
    assert sorted(recorded) == [(v, m.NAME) for v, m in MIGRATIONS]
    assert cli(config, "doctor").startswith(f"ok: schema version {LATEST_VERSION}")
    keys = json.loads(cli(config, "keys", "list", "dev@old.test", "--json"))
    assert [(k["name"], k["limit_usd"], k["limit_reset"]) for k in keys] == [
        ("capped", 5.0, "daily"), ("torevoke", None, None),
    ]  # fmt: skip
    upstream = FakeOpenAI().start()
    server = ServerProcess(config, port)
    try:
        cli(config, "providers", "update", "openai", "--base-url", upstream.base_url)
        server.start()
        for key in (OPS, CAPPED):
            upstream.push(Reply(content="after the upgrade", prompt_tokens=12, completion_tokens=3))
            answer = httpx.post(
                server.base_url + "/v1/chat/completions",
                headers={"authorization": f"Bearer {key}"},
                json=HI,
                timeout=20,
                verify=TLS,
            )
            assert answer.status_code == 200, answer.text
        assert {r.api_key for r in upstream.requests} <= {
            "sk-old-provider-one-abcdefgh", "sk-old-provider-two-ijklmnop",
        }  # fmt: skip
        assert server.stop() == 0
    finally:
        server.stop()
        upstream.stop()
    assert cli(config, "doctor").startswith(f"ok: schema version {LATEST_VERSION}")
