"""The real Codex CLI in a tool loop on a provider added with `--responses-api`: the upstream
speaks the Responses API natively, so the box passes Codex's request through and relays the
upstream's events. Codex's second turn must reach the upstream with its function call, the
call's output and the model's reasoning item (its `encrypted_content` intact, as OpenAI's
stateless mode needs it), and each turn is charged once at the upstream's counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import usd_nanos
from tests.responses.conftest import NATIVE_MODEL, PRICES, ResponsesBox
from tests.responses.test_codex import CODEX, codex_exec, pytestmark  # noqa: F401

SEALED = "gAAAAB-sealed-reasoning-0001"
USAGE = {"input_tokens": 900, "input_tokens_details": {"cached_tokens": 0},
         "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 12},
         "total_tokens": 930}  # fmt: skip


def _response(status: str, output: list[Any], usage: Any) -> dict[str, Any]:
    return {"id": "resp_tool1", "object": "response", "created_at": 1, "status": status,
            "model": "gpt-5.4", "output": output, "usage": usage, "error": None,
            "incomplete_details": None, "tools": [], "tool_choice": "auto",
            "parallel_tool_calls": True}  # fmt: skip


def reasoning_then_exec() -> list[bytes]:
    """OpenAI's stream for a turn that reasons, then calls `exec_command`."""
    arguments = json.dumps({"cmd": "echo native-tool-loop"})
    reasoning = {"id": "rs_tool1", "type": "reasoning", "summary": [],
                 "encrypted_content": SEALED}  # fmt: skip
    call = {"id": "fc_tool1", "type": "function_call", "status": "completed",
            "call_id": "call_n1", "name": "exec_command", "arguments": arguments}  # fmt: skip
    started = call | {"status": "in_progress", "arguments": ""}
    events = [
        {"type": "response.created", "response": _response("in_progress", [], None)},
        {"type": "response.in_progress", "response": _response("in_progress", [], None)},
        {"type": "response.output_item.added", "output_index": 0, "item": reasoning},
        {"type": "response.output_item.done", "output_index": 0, "item": reasoning},
        {"type": "response.output_item.added", "output_index": 1, "item": started},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_tool1",
         "output_index": 1, "delta": arguments},
        {"type": "response.function_call_arguments.done", "item_id": "fc_tool1",
         "output_index": 1, "arguments": arguments},
        {"type": "response.output_item.done", "output_index": 1, "item": call},
        {"type": "response.completed",
         "response": _response("completed", [reasoning, call], USAGE)},
    ]  # fmt: skip
    return [
        f"event: {e['type']}\ndata: {json.dumps(e | {'sequence_number': n})}\n\n".encode()
        for n, e in enumerate(events)
    ]


def test_codex_tool_loop_on_a_native_responses_provider(
    fresh: ResponsesBox, tmp_path: Path
) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(
        Reply(raw=reasoning_then_exec()),
        Reply(content="Echoed natively.", prompt_tokens=1000, completion_tokens=4),
    )
    done = codex_exec(fresh, tmp_path, key, "Run echo.", model=NATIVE_MODEL)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "last.txt").read_text().strip() == "Echoed natively."
    turns = [r.body for r in fresh.openai_fake.requests if r.path == "/v1/responses"]
    assert len(turns) == 2 and turns[0]["model"] == "gpt-5.4"
    items = turns[1]["input"]
    (sealed,) = [i for i in items if i.get("type") == "reasoning"]
    assert sealed["encrypted_content"] == SEALED
    (call,) = [i for i in items if i.get("type") == "function_call"]
    assert (call["call_id"], call["name"]) == ("call_n1", "exec_command")
    (output,) = [i for i in items if i.get("type") == "function_call_output"]
    assert output["call_id"] == "call_n1" and "native-tool-loop" in str(output["output"])
    rows = fresh.usage_rows(email)
    assert [(r["route"], r["status"]) for r in rows] == [("/v1/responses", "ok")] * 2
    costs = [usd_nanos((900, PRICES["in"]), (30, PRICES["out"])),
             usd_nanos((1000, PRICES["in"]), (4, PRICES["out"]))]  # fmt: skip
    assert sorted(r["cost_nanos"] for r in rows) == sorted(costs)
    assert fresh.balance_nanos(email)[1] == 0
