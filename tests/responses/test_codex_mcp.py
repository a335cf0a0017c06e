"""The real Codex CLI (`codex exec`) with an MCP server (tests/fakes/mcp_stdio.py) on a chat model
of an `openai` provider: Codex 0.171 sends an MCP server's tools as a `namespace` group, which the
box names namespace + name on chat; a long tool's chat name must still fit the 64 characters
OpenAI takes, and its call must come back to Codex under its namespace and own name (Codex then
runs it). Skipped, as test_codex.py is, without `codex`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.fakes.mcp_stdio import LONG_TOOL
from tests.fakes.openai_upstream import Reply
from tests.responses.conftest import OPENAI_MODEL, ResponsesBox
from tests.responses.test_codex import CODEX, CONFIG, pytestmark  # noqa: F401

MCP_SERVER = Path(__file__).resolve().parents[1] / "fakes" / "mcp_stdio.py"
MCP_CONFIG = (
    '\n[mcp_servers.github-enterprise]\ncommand = "{python}"\nargs = ["{server}"]\n'
    'default_tools_approval_mode = "approve"\n'  # (else exec refuses the call: "never")
)


def codex_with_mcp(box: ResponsesBox, home: Path, key: str, prompt: str) -> str:
    """`codex exec` against the box with the fake MCP server; the last message it wrote."""
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    config = CONFIG.format(model=OPENAI_MODEL, base_url=box.server.base_url)
    config += MCP_CONFIG.format(python=sys.executable, server=MCP_SERVER)
    (codex_home / "config.toml").write_text(config)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "CODEX_HOME": str(codex_home), "CODELACE_API_KEY": key}  # fmt: skip
    assert CODEX is not None
    out = home / "last.txt"
    done = subprocess.run([CODEX, "exec", "--skip-git-repo-check", "--output-last-message",
                           str(out), prompt], env=env, cwd=home, capture_output=True, text=True,
                          timeout=120, check=False, stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 0, f"codex failed: {done.stdout[-2000:]} {done.stderr[-2000:]}"
    return out.read_text().strip()


def names(body: dict[str, Any]) -> list[str]:
    """Every function name of a chat body: its tools' and earlier calls'."""
    found = [tool["function"]["name"] for tool in body.get("tools") or []]
    for message in body["messages"]:
        found += [call["function"]["name"] for call in message.get("tool_calls") or []]
    return found


def test_a_long_mcp_tool_name_on_a_chat_model(fresh: ResponsesBox, tmp_path: Path) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="Ready."))
    assert codex_with_mcp(fresh, tmp_path, key, "Are you ready?") == "Ready."
    (short,) = [n for n in names(fresh.openai_fake.requests[-1].body) if LONG_TOOL[:20] in n]
    call = {"name": short, "arguments": json.dumps({"author": "alice"})}
    fresh.openai_fake.push(Reply(content="", tool_calls=[call]), Reply(content="Found them."))
    assert codex_with_mcp(fresh, tmp_path, key, "Find alice's threads") == "Found them."
    bodies = [r.body for r in fresh.openai_fake.requests]
    assert all(len(name) <= 64 for body in bodies for name in names(body))
    assert names(bodies[-1]).count(short) == 2  # the tool, and the call handed back
    outputs = [json.dumps(m["content"]) for m in bodies[-1]["messages"] if m["role"] == "tool"]
    assert f"called {LONG_TOOL}" in outputs[-1]
    rows = fresh.usage_rows(email)
    assert [r["status"] for r in rows] == ["ok"] * 3
    after, held = fresh.balance_nanos(email)
    assert (20_000_000_000 - after, held) == (sum(r["cost_nanos"] for r in rows), 0)
