"""Codex's Responses WebSocket transport, which the box does not serve, declined at once.

Codex's built-in `openai` provider (pointed at the box with `openai_base_url`) first tries a
WebSocket to `GET /v1/responses`. The box answered that 405, which Codex took as a transient
failure: a prewarm and five reconnects, "Reconnecting... 2/5" to "5/5" on the terminal and
about six seconds lost before every session's "Falling back from WebSockets to HTTPS transport".
A 426 Upgrade Required is the answer Codex takes as "no WebSocket here": it goes straight to
HTTPS, asking once. The custom provider of the README never asks (`supports_websockets` is
false there).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx

from tests.fakes.openai_upstream import Reply
from tests.responses.conftest import OPENAI_MODEL, ResponsesBox
from tests.responses.test_codex import CODEX, OFFLINE_TAIL, pytestmark  # noqa: F401
from tests.support import TLS

UPGRADE = {"connection": "Upgrade", "upgrade": "websocket", "sec-websocket-version": "13",
           "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ=="}  # fmt: skip


def test_a_websocket_upgrade_is_declined_with_426(fresh: ResponsesBox) -> None:
    answer = httpx.get(
        f"{fresh.server.base_url}/v1/responses", headers=UPGRADE, timeout=10, verify=TLS
    )
    assert answer.status_code == 426
    error = answer.json()["error"]
    assert error["code"] == "websocket_not_supported" and "POST /v1/responses" in error["message"]


def test_codex_goes_to_https_without_reconnecting(fresh: ResponsesBox, tmp_path: Path) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="Over HTTPS.", prompt_tokens=100, completion_tokens=3))
    codex_home = tmp_path / ".codex"
    codex_home.mkdir()
    (codex_home / "config.toml").write_text(
        f'model = "{OPENAI_MODEL}"\nopenai_base_url = "{fresh.server.base_url}/v1"\n'
        "check_for_update_on_startup = false\n" + OFFLINE_TAIL
    )
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "CODEX_HOME": str(codex_home), "CODEX_API_KEY": key}  # fmt: skip
    assert CODEX is not None
    seen = len(fresh.server.log_text().splitlines())  # the box's log: this package's requests
    done = subprocess.run([CODEX, "exec", "--skip-git-repo-check", "--output-last-message",
                           str(tmp_path / "last.txt"), "Say hi."], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "last.txt").read_text().strip() == "Over HTTPS."
    said = done.stdout + done.stderr
    assert "Reconnecting" not in said and "Falling back from WebSockets" not in said, said[-2000:]
    lines = fresh.server.log_text().splitlines()[seen:]
    asked = [line for line in lines if "GET /v1/responses" in line]
    assert len(asked) <= 1 and all(" 426 " in line for line in asked), asked
    assert len(fresh.usage_rows(email)) == 1
