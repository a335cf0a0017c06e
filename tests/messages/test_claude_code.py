"""The real Claude Code client (`claude -p`) against the box and the fake Anthropic upstream.

Claude Code comes from the npm registry (`.ci/run` installs it into .ci/node); the test is
skipped only when no `claude` executable can be found. It runs with a throwaway HOME, no
telemetry, no auto-update and no non-essential traffic, so it talks to the box alone.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic, Reply, ToolUse
from tests.fakes.openai_upstream import NO_REASONING
from tests.fakes.openai_upstream import Reply as OpenAIReply
from tests.messages.conftest import (
    MODEL,
    OPENAI_ALIAS,
    OPENAI_MODEL,
    OPENAI_PRICES,
    PRICES,
    MessagesBox,
    openai_chunk,
    tool_call_piece,
    usd_nanos,
)

ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = (ROOT / ".ci" / "node" / "node_modules" / ".bin" / "claude",)


def find_claude() -> str | None:
    """The claude executable: $CLAUDE_BIN (another version on purpose), .ci/node's, or one on
    PATH."""
    for path in (Path(os.environ.get("CLAUDE_BIN") or "/nonexistent"), *CANDIDATES):
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return shutil.which("claude")


CLAUDE = find_claude()
pytestmark = pytest.mark.skipif(
    CLAUDE is None, reason="Claude Code is not installed (npm install --prefix .ci/node "
    "@anthropic-ai/claude-code, as .ci/run does)"
)  # fmt: skip


@functools.cache
def asked_model(*args: str) -> str:
    """The model name the installed Claude Code asks for (`claude -p` with these arguments; none:
    its default), each release choosing its own (2.1.197: claude-opus-4-8, 2.1.332:
    claude-opus-5-5): read off its first request to a fake Anthropic of its own (the box sees
    nothing, nothing is billed), then the client is stopped (it retries a refusal for long)."""
    assert CLAUDE is not None
    probe = FakeAnthropic(api_keys=()).start()
    try:
        with tempfile.TemporaryDirectory() as home:
            env = {**claude_env_for(probe.base_url, Path(home)), "ANTHROPIC_API_KEY": "sk-probe"}
            env["TMPDIR"] = home  # the killed client leaves its sockets there, not in /tmp
            _first_request(probe, [CLAUDE, "-p", "hi", *args], env, home)
        asked = [r.body["model"] for r in probe.requests if isinstance(r.body, dict)]
    finally:
        probe.stop()
    assert asked, f"claude {args} sent no request"
    return str(asked[0])


def _first_request(probe: FakeAnthropic, command: list[str], env: dict[str, str], cwd: str) -> None:
    """Runs `command` until `probe` has a request (60 s at most), then stops it."""
    process = subprocess.Popen(command, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not probe.requests and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait()


@functools.cache
def claude_version() -> tuple[int, ...]:
    """The installed Claude Code's version (`claude --version`: "2.1.332 (Claude Code)")."""
    assert CLAUDE is not None
    done = subprocess.run([CLAUDE, "--version"], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, check=True)  # fmt: skip
    return tuple(int(part) for part in done.stdout.split()[0].split("."))


def default_model() -> str:
    """What Claude Code asks for when told nothing (and for `/model opus`)."""
    return asked_model()


@pytest.fixture(autouse=True)
def default_alias(box: MessagesBox) -> None:
    """Claude Code's default model name routed to the Anthropic model, as an operator would."""
    box.cli("models", "alias", default_model(), MODEL)


def run_claude(box: MessagesBox, home: Path, auth: dict[str, str], *args: str) -> Any:
    """`claude -p ... --output-format json` against the box; its parsed JSON answer."""
    home.mkdir(exist_ok=True)
    env = {**claude_env(box, home), **auth}
    assert CLAUDE is not None
    done = subprocess.run([CLAUDE, "-p", *args, "--output-format", "json"], env=env, cwd=home,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, f"claude failed: {done.stdout[-2000:]} {done.stderr[-2000:]}"
    return json.loads(done.stdout)


def notes_home(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway HOME for Claude Code holding notes.txt, which tells the secret word (the
    tool-loop tests ask for it); the home and the note's path."""
    home = tmp_path / "home"
    home.mkdir()
    notes = home / "notes.txt"
    notes.write_text("the secret word is pelican\n")
    return home, notes


def claude_env(box: MessagesBox, home: Path) -> dict[str, str]:
    """Claude Code's environment: the box, a throwaway HOME, nothing else contacted."""
    return claude_env_for(box.server.base_url, home)


def claude_env_for(base_url: str, home: Path) -> dict[str, str]:
    """Claude Code's environment: this Messages API, a throwaway HOME, nothing else contacted."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": base_url,
        "DISABLE_TELEMETRY": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }


def test_a_plain_prompt_with_the_auth_token(fresh: MessagesBox, tmp_path: Path) -> None:
    email, key = fresh.new_key()
    fresh.fake.script(*[Reply(text="Hello from the box.")] * 5)
    answer = run_claude(fresh, tmp_path / "home", {"ANTHROPIC_AUTH_TOKEN": key}, "Say hello")
    assert answer["result"] == "Hello from the box."
    assert all(r.headers["x-api-key"] != key for r in fresh.fake.requests)
    rows = fresh.usage_rows(email)
    assert rows and all(r["route"] == "/v1/messages" for r in rows)


def hello_through_an_openai_model(box: MessagesBox, home: Path, key: str) -> Any:
    """Claude Code's answer to "Say hello" with its default model name aliased to an OpenAI
    model for the while (then to the Anthropic one again)."""
    box.cli("models", "alias", default_model(), OPENAI_MODEL)
    box.until_reloaded()  # 2.1.332 starts fast enough to be routed by the snapshot of before
    try:
        return run_claude(box, home, {"ANTHROPIC_AUTH_TOKEN": key}, "Say hello")
    finally:
        box.cli("models", "alias", default_model(), MODEL)
        box.until_reloaded()  # the next test's default name goes to the Anthropic model again


def completions(box: MessagesBox) -> list[Any]:
    """The /v1/messages calls the fake received (count_tokens ones aside)."""
    return [r for r in box.fake.requests if isinstance(r.body, dict) and "max_tokens" in r.body]


def test_a_tool_loop_with_claude_codes_own_read_tool(fresh: MessagesBox, tmp_path: Path) -> None:
    _, key = fresh.new_key()
    home, notes = notes_home(tmp_path)
    read = ToolUse("toolu_01", "Read", {"file_path": str(notes)})
    fresh.fake.script(Reply(text="", tool_uses=[read]), Reply(text="The word is pelican."))
    answer = run_claude(fresh, home, {"ANTHROPIC_API_KEY": key}, "What is the secret word in "
                        "notes.txt?", "--allowedTools", "Read")  # fmt: skip
    assert answer["result"] == "The word is pelican."
    calls = completions(fresh)
    assert len(calls) == 2
    results = [b for m in calls[1].body["messages"] if isinstance(m["content"], list)
               for b in m["content"] if b.get("type") == "tool_result"]  # fmt: skip
    assert results and "pelican" in json.dumps(results[0]["content"])
    assert results[0]["tool_use_id"] == "toolu_01"


def test_exact_debit_including_cache_tokens(fresh: MessagesBox, tmp_path: Path) -> None:
    email, key = fresh.new_key()
    reply = Reply(text="Cached.", input_tokens=120, output_tokens=30, cache_read_input_tokens=9000,
                  cache_creation_input_tokens=2500, cache_creation_1h_tokens=500)  # fmt: skip
    fresh.fake.script(*[reply] * 5)
    before, _ = fresh.balance_nanos(email)
    answer = run_claude(fresh, tmp_path / "home", {"ANTHROPIC_AUTH_TOKEN": key}, "Say it")
    assert answer["result"] == "Cached."
    one = usd_nanos((120, PRICES["in"]), (30, PRICES["out"]), (9000, PRICES["read"]),
                    (2000, PRICES["write"]), (500, PRICES["write_1h"]))  # fmt: skip
    after, held = fresh.balance_nanos(email)
    assert (before - after, held) == (one * len(completions(fresh)), 0)
    assert answer["usage"]["cache_read_input_tokens"] == 9000 * len(completions(fresh))


def test_a_model_on_an_openai_provider_by_translation(fresh: MessagesBox, tmp_path: Path) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(*[OpenAIReply(content="Translated hello.")] * 5)
    answer = run_claude(fresh, tmp_path / "home", {"ANTHROPIC_AUTH_TOKEN": key}, "Say hello",
                        "--model", OPENAI_ALIAS)  # fmt: skip
    assert answer["result"] == "Translated hello."
    assert fresh.openai_fake.requests and completions(fresh) == []
    assert {r["model"] for r in fresh.usage_rows(email)} == {OPENAI_MODEL}


def test_claude_codes_default_name_on_an_openai_model(fresh: MessagesBox, tmp_path: Path) -> None:
    """Claude Code's default name routed to an OpenAI model: its betas (2.1.197 asks its
    default with `anthropic-beta: context-1m-*`, which only an Anthropic upstream acts on and
    bills for) are never sent to an OpenAI one, so not refused."""
    email, key = fresh.new_key()
    fresh.openai_fake.push(*[OpenAIReply(content="Translated hello.")] * 5)
    answer = hello_through_an_openai_model(fresh, tmp_path / "home", key)
    assert answer["result"] == "Translated hello."
    assert fresh.openai_fake.requests and completions(fresh) == []
    assert {r["model"] for r in fresh.usage_rows(email)} == {OPENAI_MODEL}


def test_no_credit_is_a_402_and_no_upstream_call(fresh: MessagesBox, tmp_path: Path) -> None:
    _, key = fresh.new_key(credit_usd="0")
    home = tmp_path / "home"
    home.mkdir()
    env = {**claude_env(fresh, home), "ANTHROPIC_AUTH_TOKEN": key}
    assert CLAUDE is not None
    command = [CLAUDE, "-p", "Say hello", "--output-format", "json"]
    done = subprocess.run(command, env=env, cwd=home, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode != 0
    assert json.loads(done.stdout)["api_error_status"] == 402
    assert fresh.fake.requests == []


def test_parallel_tool_calls_by_translation_interleaved(fresh: MessagesBox, tmp_path: Path) -> None:
    """Two Read calls from an OpenAI-compatible upstream that sends both calls' headers before
    their arguments: Claude Code runs both (no "Content block not found")."""
    _, key = fresh.new_key()
    home = tmp_path / "home"
    home.mkdir()
    paths = {}
    for name, word in (("a", "pelican"), ("b", "heron")):
        paths[name] = home / f"{name}.txt"
        paths[name].write_text(f"the word is {word}\n")
    args = {name: json.dumps({"file_path": str(path)}) for name, path in paths.items()}
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    stream = [
        openai_chunk(tool_call_piece(0, "call_a")),
        openai_chunk(tool_call_piece(1, "call_b")),
        openai_chunk(tool_call_piece(0, arguments=args["a"][:10])),
        openai_chunk(tool_call_piece(1, arguments=args["b"])),
        openai_chunk(tool_call_piece(0, arguments=args["a"][10:])),
        openai_chunk({}, "tool_calls"),
        openai_chunk({}, usage=usage),
        b"data: [DONE]\n\n",
    ]
    fresh.openai_fake.push(OpenAIReply(raw=stream), OpenAIReply(content="pelican and heron"))
    answer = run_claude(fresh, home, {"ANTHROPIC_AUTH_TOKEN": key}, "Read a.txt and b.txt",
                        "--model", OPENAI_ALIAS, "--allowedTools", "Read")  # fmt: skip
    assert answer["result"] == "pelican and heron"
    second = fresh.openai_fake.requests[-1].body["messages"]
    results = {m["tool_call_id"]: m["content"] for m in second if m["role"] == "tool"}
    assert "pelican" in results["call_a"] and "heron" in results["call_b"]


def test_the_default_name_on_a_model_that_does_not_reason(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    """Claude Code always asks for adaptive thinking; aliased to an OpenAI model that refuses
    reasoning_effort (gpt-4.1), each call is asked once more without it, and charged once."""
    email, key = fresh.new_key()
    fresh.openai_fake.no_reasoning["gpt-5.4-mini"] = NO_REASONING
    fresh.openai_fake.default = OpenAIReply(content="Plain hello.", prompt_tokens=50,
                                            completion_tokens=3)  # fmt: skip
    before, _ = fresh.balance_nanos(email)
    answer = hello_through_an_openai_model(fresh, tmp_path / "home", key)
    assert answer["result"] == "Plain hello."
    sent = [r.body.get("reasoning_effort") for r in fresh.openai_fake.requests]
    refused = [i for i, effort in enumerate(sent) if effort is not None]
    assert refused and all(sent[i + 1] is None for i in refused), sent
    answered = len(sent) - len(refused)
    rows = fresh.usage_rows(email)
    assert len(rows) == answered and {r["status"] for r in rows} == {"ok"}
    one = usd_nanos((50, OPENAI_PRICES["in"]), (3, OPENAI_PRICES["out"]))
    after, held = fresh.balance_nanos(email)
    assert (before - after, held) == (one * answered, 0)


def test_model_discovery_lists_the_boxs_claude_names(fresh: MessagesBox, tmp_path: Path) -> None:
    """Claude Code's gateway model discovery (`CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY=1`, as
    the README says) fills `/model` from the box's `GET /v1/models`: the names that begin with
    claude or anthropic, aliases included (cached where Claude Code keeps them). 2.1.197 does
    not discover in `claude -p`; 2.1.332 does."""
    if claude_version() < (2, 1, 332):
        pytest.skip(f"Claude Code {claude_version()} does not discover gateway models in -p")
    _, key = fresh.new_key()
    home = tmp_path / "home"
    discovery = {"CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1"}
    run_claude(fresh, home, {"ANTHROPIC_AUTH_TOKEN": key, **discovery}, "Say hello")
    cached = json.loads((home / ".claude" / "cache" / "gateway-models.json").read_text())
    listed = {model["id"] for model in cached["models"]}
    assert {MODEL, default_model(), OPENAI_ALIAS} <= listed, listed
    assert OPENAI_MODEL not in listed  # Claude Code keeps claude* and anthropic* names only


def test_the_users_own_anthropic_key_still_exported(fresh: MessagesBox, tmp_path: Path) -> None:
    """The README's word for a user who keeps ANTHROPIC_API_KEY (their own Anthropic key)
    exported beside ANTHROPIC_AUTH_TOKEN (the box's): Claude Code works through the box, which
    never forwards the user's own key."""
    email, key = fresh.new_key()
    own = "sk-ant-api03-the-users-own-key"
    fresh.fake.script(*[Reply(text="Hello from the box.")] * 5)
    auth = {"ANTHROPIC_AUTH_TOKEN": key, "ANTHROPIC_API_KEY": own}
    answer = run_claude(fresh, tmp_path / "home", auth, "Say hello")
    assert answer["result"] == "Hello from the box."
    assert fresh.fake.requests and all(own not in r.headers.values() for r in fresh.fake.requests)
    assert fresh.usage_rows(email)
