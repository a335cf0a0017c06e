"""The real Codex CLI killed mid-stream on a native Responses upstream (a provider added with
`--responses-api`): the box reads the upstream on and charges the provider's final count (row
`abandoned`), nothing stays held and the ledger is whole (`doctor`)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import usd_nanos
from tests.responses.conftest import NATIVE_MODEL, PRICES, ResponsesBox
from tests.responses.test_codex import CODEX, CONFIG
from tests.support import eventually

pytestmark = pytest.mark.skipif(CODEX is None, reason="Codex is not installed")
PIECES = [f" w{n}" for n in range(30)]


def start_codex(box: ResponsesBox, home: Path, key: str) -> subprocess.Popen[bytes]:
    """`codex exec` against the box in a process group of its own (to kill it whole)."""
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    (codex_home / "config.toml").write_text(
        CONFIG.format(model=NATIVE_MODEL, base_url=box.server.base_url)
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "CODEX_HOME": str(codex_home), "CODELACE_API_KEY": key}  # fmt: skip
    assert CODEX is not None
    return subprocess.Popen(
        [CODEX, "exec", "--skip-git-repo-check", "Say hello."], env=env, cwd=home,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip


def test_codex_killed_mid_stream_on_a_native_upstream_is_charged_the_providers_count(
    fresh: ResponsesBox, tmp_path: Path
) -> None:
    email, key = fresh.new_key()
    before, _ = fresh.balance_nanos(email)
    fake = fresh.openai_fake
    fake.push(Reply(pieces=PIECES, content="".join(PIECES), piece_delay=0.1,
                    prompt_tokens=5000, completion_tokens=400))  # fmt: skip
    codex = start_codex(fresh, tmp_path, key)
    try:
        eventually(lambda: fake.requests, "Codex's request reached the upstream", timeout=60)
        time.sleep(0.5)  # a few deltas relayed, ~2.5 s of the answer still to come
        os.killpg(codex.pid, signal.SIGKILL)
    finally:
        if codex.poll() is None:
            os.killpg(codex.pid, signal.SIGKILL)
        codex.wait(timeout=10)
    assert [r.path for r in fake.requests] == ["/v1/responses"]
    eventually(lambda: fresh.usage_rows(email), "the call settled", timeout=30)
    (row,) = fresh.usage_rows(email)
    assert (row["status"], row["error_code"], row["estimated"]) == (
        "abandoned", "client_closed", 0), row  # fmt: skip
    assert (row["input_tokens"], row["output_tokens"]) == (5000, 400)
    charged = usd_nanos((5000, PRICES["in"]), (400, PRICES["out"]))
    assert row["cost_nanos"] == charged
    assert fresh.balance_nanos(email) == (before - charged, 0)
    assert not fake.client_gone.is_set(), "the box stopped reading the upstream"
    fresh.cli("doctor")
