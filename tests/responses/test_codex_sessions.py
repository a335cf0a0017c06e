"""The real Codex CLI (`codex exec`) through sessions beyond the happy path: a tool loop on an
`anthropic` provider (Responses translated to Messages, signed thinking handed back), and a
chat upstream that cuts its stream mid-answer. Afterwards each answered call is charged once,
the failed one not at all, nothing held. Skipped, as test_codex.py is, without `codex`.
"""

from __future__ import annotations

from pathlib import Path

from tests.fakes.anthropic_upstream import Reply, ToolUse
from tests.fakes.openai_upstream import Reply as OpenAIReply
from tests.messages.conftest import usd_nanos
from tests.responses.conftest import ANTHROPIC_MODEL, PRICES, ResponsesBox
from tests.responses.test_codex import CODEX, codex_exec, pytestmark  # noqa: F401

THOUGHT = "I should run echo to see it."


def test_codex_tool_loop_on_an_anthropic_provider(fresh: ResponsesBox, tmp_path: Path) -> None:
    email, key = fresh.new_key()
    run = ToolUse("toolu_c1", "exec_command", {"cmd": "echo box-tool-loop"})
    fresh.fake.script(Reply(text="", thinking=THOUGHT, tool_uses=[run], input_tokens=700,
                            output_tokens=40),
                      Reply(text="Echoed.", input_tokens=800, output_tokens=5))  # fmt: skip
    done = codex_exec(fresh, tmp_path, key, "Run echo.", model=ANTHROPIC_MODEL)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "last.txt").read_text().strip() == "Echoed."
    calls = [r.body for r in fresh.fake.requests]
    assert len(calls) == 2
    turn, result = calls[1]["messages"][-2:]
    assert [b["type"] for b in turn["content"]] == ["thinking", "tool_use"]
    assert turn["content"][0]["thinking"] == THOUGHT
    assert turn["content"][0]["signature"] == Reply().signature
    assert turn["content"][1]["id"] == "toolu_c1"
    (output,) = result["content"]
    assert output["tool_use_id"] == "toolu_c1" and "box-tool-loop" in str(output["content"])
    rows = fresh.usage_rows(email)
    assert [(r["route"], r["status"]) for r in rows] == [("/v1/responses", "ok")] * 2
    costs = [usd_nanos((700, PRICES["in"]), (40, PRICES["out"])),
             usd_nanos((800, PRICES["in"]), (5, PRICES["out"]))]  # fmt: skip
    assert [r["cost_nanos"] for r in rows] == costs
    assert fresh.balance_nanos(email) == (20_000_000_000 - sum(costs), 0)


def test_codex_reconnects_after_a_chat_stream_cut_mid_answer(
    fresh: ResponsesBox, tmp_path: Path
) -> None:
    email, key = fresh.new_key()
    cut = OpenAIReply(content="An answer that the upstream cuts in the middle.", drop_after=3)
    fresh.openai_fake.push(cut, OpenAIReply(content="Whole answer.", completion_tokens=3))
    done = codex_exec(fresh, tmp_path, key, "Say hello.")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "last.txt").read_text().strip() == "Whole answer."
    assert len(fresh.openai_fake.requests) == 2
    rows = fresh.usage_rows(email)
    assert [r["status"] for r in rows] == ["error", "ok"] and rows[0]["cost_nanos"] == 0
    assert fresh.balance_nanos(email) == (20_000_000_000 - rows[1]["cost_nanos"], 0)
