"""The real Claude Code client (`claude -p`) with an MCP server (tests/fakes/mcp_stdio.py) on a
model of an `openai` provider: its tools are deferred until its ToolSearch tool loads them, and
their names (`mcp__<server>__<tool>`) may be longer than the 64 characters OpenAI takes
(Anthropic takes 128). Skipped, as test_claude_code.py is, without `claude`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.fakes.mcp_stdio import LONG_TOOL
from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import MODEL, OPENAI_MODEL, MessagesBox
from tests.messages.test_claude_code import (  # noqa: F401
    CLAUDE,
    claude_env,
    default_alias,
    default_model,
    pytestmark,
)

SERVER = "github-enterprise"
FULL_NAME = f"mcp__{SERVER}__{LONG_TOOL}"  # 91 characters
MCP_SERVER = Path(__file__).resolve().parents[1] / "fakes" / "mcp_stdio.py"


def claude_with_mcp(box: MessagesBox, home: Path, key: str, *args: str) -> Any:
    """`claude -p ... --output-format json` with the fake MCP server (its tools and ToolSearch
    allowed); its parsed JSON answer."""
    config = home / "mcp.json"
    server = {"command": sys.executable, "args": [str(MCP_SERVER)]}
    config.write_text(json.dumps({"mcpServers": {SERVER: server}}))
    env = {**claude_env(box, home), "ANTHROPIC_API_KEY": key}
    assert CLAUDE is not None
    done = subprocess.run([CLAUDE, "-p", *args, "--mcp-config", str(config),
                           "--strict-mcp-config", "--allowedTools", f"mcp__{SERVER}",
                           "ToolSearch", "--output-format", "json"], env=env, cwd=home,
                          capture_output=True, text=True, timeout=120, check=False,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 0, f"claude failed: {done.stdout[-2000:]} {done.stderr[-2000:]}"
    return json.loads(done.stdout)


def sent_names(body: dict[str, Any]) -> list[str]:
    """Every function name a Chat Completions body holds: its tools' and earlier calls'."""
    names = [tool["function"]["name"] for tool in body.get("tools") or []]
    for message in body["messages"]:
        names += [call["function"]["name"] for call in message.get("tool_calls") or []]
    return names


def tool_outputs(body: dict[str, Any]) -> list[str]:
    return [json.dumps(m["content"]) for m in body["messages"] if m["role"] == "tool"]


def test_a_long_mcp_tool_name_on_an_openai_model(fresh: MessagesBox, tmp_path: Path) -> None:
    """ToolSearch loads the MCP tools (the first turn); in the next, `--continue`d, the model
    calls the long-named one by the name it was given and Claude Code runs it: every name the
    upstream gets fits OpenAI's 64 characters, the same one each turn, and the call comes back
    to Claude Code under its full name. Each answered call is charged once."""
    email, key = fresh.new_key()
    home = tmp_path / "home"
    home.mkdir()
    fresh.cli("models", "alias", default_model(), OPENAI_MODEL)
    fresh.until_reloaded()
    try:
        search = {"name": "ToolSearch", "arguments": json.dumps({"query": "review threads"})}
        fresh.openai_fake.push(Reply(content="", tool_calls=[search]), Reply(content="Loaded."))
        first = claude_with_mcp(fresh, home, key, "Load the review tools")
        assert first["result"] == "Loaded.", first
        loaded = fresh.openai_fake.requests[-1].body
        (short,) = [n for n in sent_names(loaded) if n.startswith(f"mcp__{SERVER}__search")]
        call = {"name": short, "arguments": json.dumps({"author": "alice"})}
        fresh.openai_fake.push(Reply(content="", tool_calls=[call]), Reply(content="Found them."))
        second = claude_with_mcp(fresh, home, key, "--continue", "Find alice's threads")
        assert second["result"] == "Found them.", second
    finally:
        fresh.cli("models", "alias", default_model(), MODEL)
        fresh.until_reloaded()
    bodies = [r.body for r in fresh.openai_fake.requests]
    assert all(len(name) <= 64 for body in bodies for name in sent_names(body))
    assert sent_names(bodies[-1]).count(short) == 2  # the tool and the call of the last turn
    assert f'called {LONG_TOOL} {{\\"author\\": \\"alice\\"}}' in tool_outputs(bodies[-1])[-1]
    rows = fresh.usage_rows(email)
    assert [r["status"] for r in rows] == ["ok"] * 4
    after, held = fresh.balance_nanos(email)
    assert (20_000_000_000 - after, held) == (sum(r["cost_nanos"] for r in rows), 0)
