"""Claude's signed thinking handed back through the Responses API goes only to the model that
wrote it: a thread moved to another Claude model (Codex's /model) keeps working, as Anthropic
refuses a thinking block signed for another model (400 "Invalid `signature` in `thinking`
block")."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fakes.anthropic_upstream import Reply, ToolUse
from tests.responses.conftest import ANTHROPIC_MODEL, PRICES, ResponsesBox
from tests.support import TLS

OTHER_MODEL = "anth/claude-opus-4.5"
TOOLS = [{"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}}]


def _post(box: ResponsesBox, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{box.server.base_url}/v1/responses", json=body, timeout=30, verify=TLS,
                      headers={"authorization": f"Bearer {key}"})  # fmt: skip


def _turn(model: str, items: list[Any]) -> dict[str, Any]:
    return {"model": model, "input": items, "tools": TOOLS, "max_output_tokens": 4000,
            "reasoning": {"effort": "low"}, "include": ["reasoning.encrypted_content"]}  # fmt: skip


def test_thinking_of_one_claude_model_is_not_handed_to_another(fresh: ResponsesBox) -> None:
    fresh.cli("models", "set", OTHER_MODEL, "--input-per-1m", PRICES["in"],
              "--output-per-1m", PRICES["out"])  # fmt: skip
    fresh.until_served(OTHER_MODEL)
    _, key = fresh.new_key()
    call = Reply(text="", thinking="List the files.", tool_uses=[ToolUse("toolu_1", "shell", {})])
    fresh.fake.script(call, Reply(text="Done."), Reply(text="Done."))
    ask = {"role": "user", "content": "list files"}
    first = _post(fresh, key, _turn(ANTHROPIC_MODEL, [ask]))
    assert first.status_code == 200, first.text
    items = [ask, *first.json()["output"]]
    items.append({"type": "function_call_output", "call_id": "toolu_1", "output": "a.txt"})
    moved = _post(fresh, key, _turn(OTHER_MODEL, items))
    assert moved.status_code == 200, moved.text  # Anthropic: Invalid `signature` (a 400)
    sent = fresh.fake.requests[-1].body
    assert not any(b["type"] == "thinking" for m in sent["messages"] for b in m["content"])
    assert "thinking" not in sent  # a tool loop without its thinking: thinking stays off
    same = _post(fresh, key, _turn(ANTHROPIC_MODEL, items))  # the model that wrote it gets it
    assert same.status_code == 200, same.text
    assert fresh.fake.requests[-1].body["messages"][1]["content"][0] == {
        "type": "thinking", "thinking": "List the files.", "signature": call.signature,
    }  # fmt: skip
