"""The real Codex CLI compacting remotely through the box (test_compaction.py has the wire).

Codex 0.171 compacts with a `compaction_trigger` request when its provider counts as OpenAI's:
the built-in `openai` provider pointed at the box (`openai_base_url`, the key in CODEX_API_KEY)
or a custom provider named "OpenAI". A small `model_auto_compact_token_limit` makes it compact
in the middle of a turn, after a tool call: the box refused the trigger and Codex ended with
"Error running remote compact task", no answer. Now the turn goes on after the compaction, on a
chat model (the box's own summary handed back) and on a native one (the upstream's item), and
each of the three calls is charged once. Skipped, as test_codex.py is, without `codex`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.openai_upstream import Reply
from tests.responses.conftest import NATIVE_MODEL, OPENAI_MODEL, ResponsesBox
from tests.responses.test_codex import CODEX, CONFIG, OFFLINE_TAIL, pytestmark  # noqa: F401

SMALL = "model_context_window = 6000\nmodel_auto_compact_token_limit = 2000\n"
CALL = {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_1",
        "name": "exec_command", "arguments": json.dumps({"cmd": "echo hi"})}  # fmt: skip
UPSTREAM_COMPACTION = {"id": "cmp_up", "type": "compaction", "encrypted_content": "gAAAA-up"}


def config(box: ResponsesBox, model: str, built_in: bool) -> str:
    """Codex's config.toml: the built-in provider at the box, or the README's renamed OpenAI."""
    if built_in:
        base = f'openai_base_url = "{box.server.base_url}/v1"\n'
        offline = "check_for_update_on_startup = false\n" + OFFLINE_TAIL
        return f'{SMALL}model = "{model}"\n{base}{offline}'
    readme = CONFIG.format(model=model, base_url=box.server.base_url)
    return SMALL + readme.replace('name = "codelace-box"', 'name = "OpenAI"')


def native_frames(items: list[dict[str, Any]], input_tokens: int) -> list[bytes]:
    """A native upstream's stream: each item added and done, then completed with usage."""
    response = {"id": "resp_up", "object": "response", "created_at": 1, "status": "in_progress",
                "model": "gpt-5.4", "output": [], "usage": None}  # fmt: skip
    events: list[dict[str, Any]] = [{"type": "response.created", "response": response}]
    for index, item in enumerate(items):
        for kind in ("response.output_item.added", "response.output_item.done"):
            events.append({"type": kind, "output_index": index, "item": item})
    usage = {"input_tokens": input_tokens, "output_tokens": 20,
             "total_tokens": input_tokens + 20}  # fmt: skip
    done = response | {"status": "completed", "output": items, "usage": usage}
    events.append({"type": "response.completed", "response": done})
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]


def message(text: str) -> dict[str, Any]:
    return {"id": "msg_up", "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}  # fmt: skip


def run(box: ResponsesBox, home: Path, key: str, text: str) -> subprocess.CompletedProcess[str]:
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    (codex_home / "config.toml").write_text(text)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "CODEX_HOME": str(codex_home), "CODELACE_API_KEY": key,
           "CODEX_API_KEY": key}  # fmt: skip
    assert CODEX is not None
    return subprocess.run([CODEX, "exec", "--skip-git-repo-check", "--output-last-message",
                           str(home / "last.txt"), "Run echo hi, then say done."], env=env,
                          cwd=home, capture_output=True, text=True, timeout=120, check=False,
                          stdin=subprocess.DEVNULL)  # fmt: skip


def charged_once_each(box: ResponsesBox, email: str, calls: int) -> None:
    rows = box.usage_rows(email)
    assert len(rows) == calls and {r["route"] for r in rows} == {"/v1/responses"}
    assert all(r["status"] == "ok" and r["cost_nanos"] > 0 for r in rows)
    _, held = box.balance_nanos(email)
    assert held == 0


@pytest.mark.parametrize("built_in", [True, False], ids=["openai_base_url", "named_openai"])
def test_codex_compacts_a_chat_model_thread_and_goes_on(
    fresh: ResponsesBox, tmp_path: Path, built_in: bool
) -> None:
    email, key = fresh.new_key()
    call = [{"name": "exec_command", "arguments": json.dumps({"cmd": "echo hi"})}]
    fresh.openai_fake.push(Reply(content="", tool_calls=call, prompt_tokens=5000),
                           Reply(content="Ran echo hi; it printed hi.", prompt_tokens=3000),
                           Reply(content="done", prompt_tokens=400))  # fmt: skip
    done = run(fresh, tmp_path, key, config(fresh, OPENAI_MODEL, built_in))
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "last.txt").read_text().strip() == "done"
    _, compaction, after = (r.body["messages"] for r in fresh.openai_fake.requests)
    assert compaction[-1]["role"] == "user" and "summary" in compaction[-1]["content"]
    assert compaction[-2]["role"] == "tool" and "hi" in compaction[-2]["content"]
    assert "Ran echo hi; it printed hi." in json.dumps(after)
    assert not any(m["role"] == "tool" for m in after), "the compacted turns went again"
    charged_once_each(fresh, email, 3)


def test_codex_compacts_a_native_model_thread_with_the_upstreams_item(
    fresh: ResponsesBox, tmp_path: Path
) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(raw=native_frames([CALL], 5000)),
                           Reply(raw=native_frames([UPSTREAM_COMPACTION], 3000)),
                           Reply(raw=native_frames([message("done")], 400)))  # fmt: skip
    done = run(fresh, tmp_path, key, config(fresh, NATIVE_MODEL, built_in=False))
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "last.txt").read_text().strip() == "done"
    _, compaction, after = (r.body["input"] for r in fresh.openai_fake.requests)
    assert compaction[-1] == {"type": "compaction_trigger"}
    assert after[-1] == UPSTREAM_COMPACTION
    charged_once_each(fresh, email, 3)


TOO_LONG = {"message": "This model's maximum context length is 6000 tokens. However, your "
            "messages resulted in 9000 tokens. Please reduce the length of the messages.",
            "type": "invalid_request_error", "param": "messages",
            "code": "context_length_exceeded"}  # fmt: skip


def test_a_compaction_too_long_for_the_model_is_asked_again_with_the_oldest_turns_left_out(
    fresh: ResponsesBox, tmp_path: Path
) -> None:
    """The chat model refuses the compaction request itself as past its context window: Codex
    stopped the session ("ran out of room"; it trims only for its local compaction). The box
    asks again with the oldest turns left out (the summary request and instructions kept), in
    the same call: one hold, one settlement, one usage row; the refused attempt is not billed."""
    email, key = fresh.new_key()
    call = [{"name": "exec_command", "arguments": json.dumps({"cmd": "echo hi"})}]
    fresh.openai_fake.push(Reply(content="", tool_calls=call, prompt_tokens=5000),
                           Reply(status=400, error=TOO_LONG),
                           Reply(content="Ran echo hi; it printed hi.", prompt_tokens=3000),
                           Reply(content="done", prompt_tokens=400))  # fmt: skip
    done = run(fresh, tmp_path, key, config(fresh, OPENAI_MODEL, built_in=True))
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "last.txt").read_text().strip() == "done"
    _, refused, trimmed, after = (r.body["messages"] for r in fresh.openai_fake.requests)
    assert len(json.dumps(trimmed)) < len(json.dumps(refused))
    assert trimmed[-1] == refused[-1] and "summary" in trimmed[-1]["content"]
    assert [m for m in trimmed if m["role"] in ("system", "developer")] == [
        m for m in refused if m["role"] in ("system", "developer")]  # fmt: skip
    assert trimmed[len([m for m in trimmed if m["role"] in ("system", "developer")])][
        "role"] == "user"  # fmt: skip
    assert "Ran echo hi; it printed hi." in json.dumps(after)
    charged_once_each(fresh, email, 3)
