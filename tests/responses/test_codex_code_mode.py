"""The real Codex CLI on the model names it knows from GPT-5.6 on (its default, `gpt-6.2-sol`,
among them): Codex 0.171 then runs in "code mode". Its tools come in an `additional_tools`
input item (a `functions` namespace: the custom tool `exec`, JavaScript that calls Codex's
other tools, and `wait`, ...), not in `tools`, and `reasoning` carries `context: "all_turns"`.
The box refused both ("input items of type 'additional_tools' are not supported"), on every
provider kind, so a catalog model such as `openai/gpt-6.2-sol` (Codex reads its metadata past
the provider part), or an alias of Codex's default name, could not be used at all. A native
upstream gets the item as sent; a translated model is offered those tools under their own names
(`exec`, not `functionsexec`), and its call goes back to Codex in the `functions` namespace.
Skipped, as test_codex.py is, without `codex`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.anthropic_upstream import Reply, ToolUse
from tests.fakes.openai_upstream import Reply as OpenAIReply
from tests.responses.conftest import ANTHROPIC_MODEL, NATIVE_MODEL, OPENAI_MODEL, ResponsesBox
from tests.responses.test_codex import CODEX, codex_exec, pytestmark  # noqa: F401
from tests.responses.test_codex_compaction import config, message, native_frames, run

SCRIPT = 'const r = await tools.exec_command({cmd: "echo code-mode-ran"}); text(r.output);'
CALL = {"id": "ctc_1", "type": "custom_tool_call", "status": "completed", "call_id": "call_js1",
        "namespace": "functions", "name": "exec", "input": SCRIPT}  # fmt: skip


def script_call(box: ResponsesBox, target: str) -> None:
    """The model's first answer runs SCRIPT in Codex's `exec`; its second says "Ran it."."""
    if target == NATIVE_MODEL:
        box.openai_fake.push(OpenAIReply(raw=native_frames([CALL], 900)),
                             OpenAIReply(raw=native_frames([message("Ran it.")], 950)))  # fmt: skip
    elif target == OPENAI_MODEL:
        arguments = json.dumps({"input": SCRIPT})
        box.openai_fake.push(OpenAIReply(content="", tool_calls=[{"name": "exec",
                                                                  "arguments": arguments}]),
                             OpenAIReply(content="Ran it."))  # fmt: skip
    else:
        box.fake.script(Reply(text="", tool_uses=[ToolUse("toolu_js", "exec", {"input": SCRIPT})]),
                        Reply(text="Ran it."))  # fmt: skip


def bodies(box: ResponsesBox, target: str) -> list[dict[str, Any]]:
    return [r.body for r in (box.fake if target == ANTHROPIC_MODEL else box.openai_fake).requests]


def tool_names(body: dict[str, Any], target: str) -> list[str]:
    if target == ANTHROPIC_MODEL:
        return [t["name"] for t in body["tools"]]
    return [t["function"]["name"] for t in body["tools"]]


@pytest.mark.parametrize("target", [NATIVE_MODEL, OPENAI_MODEL, ANTHROPIC_MODEL])
def test_codex_code_mode_on_every_provider_kind(
    fresh: ResponsesBox, tmp_path: Path, target: str
) -> None:
    fresh.cli("models", "alias", "gpt-6.2-sol", target)
    time.sleep(1.5)  # catalog changes apply within a second
    email, key = fresh.new_key()
    script_call(fresh, target)
    done = codex_exec(fresh, tmp_path, key, "Run the script.", model="gpt-6.2-sol")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "last.txt").read_text().strip() == "Ran it."
    first, second = bodies(fresh, target)
    if target == NATIVE_MODEL:
        assert first["input"][0]["type"] == "additional_tools"
        assert first["reasoning"]["context"] == "all_turns"
        assert second["input"][-1]["type"] == "custom_tool_call_output"
    else:
        assert {"exec", "wait"} <= set(tool_names(first, target))
    assert "code-mode-ran" in json.dumps(second)
    rows = fresh.usage_rows(email)
    assert [r["status"] for r in rows] == ["ok", "ok"] and all(r["cost_nanos"] for r in rows)
    assert fresh.balance_nanos(email)[1] == 0


@pytest.mark.parametrize("target", [NATIVE_MODEL, OPENAI_MODEL])
def test_codex_code_mode_with_a_provider_named_openai(
    fresh: ResponsesBox, tmp_path: Path, target: str
) -> None:
    """With a provider named "OpenAI" (README: how Codex compacts remotely), Codex's code mode
    ends its input with a `configuration_update` item (`{"reasoning": {"effort": ...}}`, as the
    request's own `reasoning` says): the box refused it ("input items of type
    'configuration_update' are not supported"), so Codex's default model failed on its first
    turn. A native upstream gets it as sent; a translated model goes on without it."""
    fresh.cli("models", "alias", "gpt-6.2-sol", target)
    time.sleep(1.5)  # catalog changes apply within a second
    email, key = fresh.new_key()
    script_call(fresh, target)
    done = run(fresh, tmp_path, key, config(fresh, "gpt-6.2-sol", built_in=False))
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "last.txt").read_text().strip() == "Ran it."
    first, second = bodies(fresh, target)
    assert "code-mode-ran" in json.dumps(second)
    if target == NATIVE_MODEL:
        assert first["input"][-1]["type"] == "configuration_update"
    assert [r["status"] for r in fresh.usage_rows(email)] == ["ok", "ok"]
