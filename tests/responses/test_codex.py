"""The real Codex CLI (`codex exec`) against the box and the fake Chat Completions upstream.

Codex comes from the npm registry (`npm install --prefix .ci/node @openai/codex`, as .ci/run
does); the test is skipped only when no `codex` executable can be found. It runs with a
throwaway HOME and CODEX_HOME whose config.toml is the README's "Codex" block as written (read
from README.md: a custom provider with `wire_api = "responses"`), so a README that drifts from
what Codex reads fails here; it talks to the box alone. Its web search is left at its default:
the hosted `web_search` tool it then sends is dropped by the box, and Codex works all the same.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import usd_nanos
from tests.responses.conftest import NATIVE_MODEL, OPENAI_MODEL, PRICES, ResponsesBox
from tests.responses.test_native_failure import TOO_LONG, upstream_frames

ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = (ROOT / ".ci" / "node" / "node_modules" / ".bin" / "codex",)


def find_codex() -> str | None:
    """The codex executable: .ci/node's, $CODEX_BIN, or one on PATH."""
    for path in (*CANDIDATES, Path(os.environ.get("CODEX_BIN") or "/nonexistent")):
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return shutil.which("codex")


CODEX = find_codex()
pytestmark = pytest.mark.skipif(
    CODEX is None, reason="Codex is not installed (npm install --prefix .ci/node @openai/codex)"
)


# Codex kept off the network: no update check, no analytics, and no plugins (their curated
# list is synced from github.com and chatgpt.com at every start: DNS lookups in every test)
OFFLINE_TAIL = "\n[analytics]\nenabled = false\n[features]\nplugins = false\n"


def readme_config() -> str:
    """The README's Codex config.toml, as written; only the model and the box's URL are this
    test's own, and Codex is kept off the network (OFFLINE_TAIL)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("\n## Codex\n") :]
    (block,) = re.findall(r"```toml\n(.*?)```", section[: section.index("\n## ", 1)], re.S)
    block = re.sub(r'^model = "[^"]*"', 'model = "{model}"', block, count=1, flags=re.M)
    block = block.replace("https://your-box/v1", "{base_url}/v1")
    assert "{model}" in block and "{base_url}" in block, block
    offline = "check_for_update_on_startup = false\n"
    return offline + block + OFFLINE_TAIL


CONFIG = readme_config()


def codex_exec(
    box: ResponsesBox, home: Path, key: str, prompt: str, model: str = OPENAI_MODEL
) -> subprocess.CompletedProcess[str]:
    """`codex exec` against the box, writing its last message to home/last.txt."""
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    config = CONFIG.format(model=model, base_url=box.server.base_url)
    (codex_home / "config.toml").write_text(config)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CODEX_HOME": str(codex_home),
        "CODELACE_API_KEY": key,
    }
    assert CODEX is not None
    out = home / "last.txt"
    return subprocess.run(
        [CODEX, "exec", "--skip-git-repo-check", "--output-last-message", str(out), prompt],
        env=env, cwd=home, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def run_codex(box: ResponsesBox, home: Path, key: str, prompt: str) -> str:
    """`codex exec` against the box; the last message it wrote."""
    done = codex_exec(box, home, key, prompt)
    assert done.returncode == 0, f"codex failed: {done.stdout[-2000:]} {done.stderr[-2000:]}"
    return (home / "last.txt").read_text()


def test_codex_exec_through_the_box(fresh: ResponsesBox, tmp_path: Path) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="Codex through the box.", prompt_tokens=4321,
                                 completion_tokens=17))  # fmt: skip
    before, _ = fresh.balance_nanos(email)
    answer = run_codex(fresh, tmp_path, key, "Say hello to the box.")
    assert answer.strip() == "Codex through the box."
    chats = [r for r in fresh.openai_fake.requests if r.path == "/v1/chat/completions"]
    assert chats, "Codex's request never reached the upstream"
    sent = chats[0]
    assert sent.body["model"] == "gpt-5.4-mini" and sent.body["stream"] is True
    assert sent.body["messages"][0]["role"] == "system"
    user_text = str([m["content"] for m in sent.body["messages"] if m["role"] == "user"])
    assert "Say hello to the box." in user_text
    assert {t["type"] for t in sent.body.get("tools", [])} <= {"function"}
    rows = fresh.usage_rows(email)
    assert rows and all(r["route"] == "/v1/responses" and r["status"] == "ok" for r in rows)
    assert (rows[0]["input_tokens"], rows[0]["output_tokens"]) == (4321, 17)
    after, held = fresh.balance_nanos(email)
    assert held == 0 and before - after == sum(r["cost_nanos"] for r in rows)
    assert rows[0]["cost_nanos"] == usd_nanos((4321, PRICES["in"]), (17, PRICES["out"]))


def test_codex_stops_on_a_native_upstreams_context_length_failure(
    fresh: ResponsesBox, tmp_path: Path
) -> None:
    """Codex acts on `response.failed` alone: sent as an `error` event, this failure had it
    reconnect five times (six upstream calls) and end on "stream closed before
    response.completed"; as `response.failed` it stops at once and says why."""
    _, key = fresh.new_key()
    error = {"code": "context_length_exceeded", "message": TOO_LONG}
    failed = {"type": "response.failed", "response": {"status": "failed", "error": error}}
    fresh.openai_fake.push(*[Reply(raw=upstream_frames([failed])) for _ in range(6)])
    done = codex_exec(fresh, tmp_path, key, "Say hello.", model=NATIVE_MODEL)
    assert done.returncode != 0
    assert "context window" in done.stderr + done.stdout
    assert len(fresh.openai_fake.requests) == 1, "Codex retried a request that cannot succeed"


@pytest.mark.parametrize("target", [OPENAI_MODEL, NATIVE_MODEL])
def test_codex_with_its_own_metadata_for_the_model_name(
    fresh: ResponsesBox, tmp_path: Path, target: str
) -> None:
    """A model Codex knows by name (an alias `gpt-5.5`, as an operator names one so that Codex
    users keep their default) gets Codex's own tool set, with `tool_search` (`execution:
    client`: Codex searches its deferred tools itself). The box refused that tool type, so
    every request was a 400 and Codex could not be used at all. It is dropped as the hosted
    `web_search` is: the model is offered the tools Codex sent (a native upstream too, which
    would otherwise hand the box `tool_search_call` items it cannot translate)."""
    fresh.cli("models", "alias", "gpt-5.5", target)
    time.sleep(1.5)  # catalog changes apply within a second
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="Known model.", prompt_tokens=40, completion_tokens=3))
    done = codex_exec(fresh, tmp_path, key, "Say hi.", model="gpt-5.5")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "last.txt").read_text().strip() == "Known model."
    (sent,) = [r.body for r in fresh.openai_fake.requests]
    if target == NATIVE_MODEL:
        kinds = {t["type"] for t in sent["tools"]}
        assert "custom" in kinds and not kinds & {"tool_search", "web_search"}
    else:
        names = [t["function"]["name"] for t in sent["tools"]]
        assert "apply_patch" in names and "tool_search" not in names
