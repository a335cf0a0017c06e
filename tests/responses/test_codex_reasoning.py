"""The real Codex CLI on a thinking chat model (DeepSeek-style `reasoning_content`) through the
box: in a tool loop the model's reasoning goes back to it with its tool call, as DeepSeek's
thinking mode demands (without it: 400 "The reasoning_content in the thinking mode must be
passed back to the API", and Codex cannot finish a task that calls a tool)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import openai_chunk
from tests.responses.conftest import ResponsesBox
from tests.responses.test_codex import CODEX, codex_exec, pytestmark  # noqa: F401

THOUGHT = "I will list the folder with echo first."
USAGE = {"prompt_tokens": 300, "completion_tokens": 40, "total_tokens": 340}


def thinking_then_exec() -> list[bytes]:
    arguments = json.dumps({"cmd": "echo box-tool-loop"})
    call = {"index": 0, "id": "call_k1", "type": "function",
            "function": {"name": "exec_command", "arguments": arguments}}  # fmt: skip
    deltas = [{"role": "assistant", "content": None}, {"reasoning_content": THOUGHT[:15]},
              {"reasoning_content": THOUGHT[15:]}, {"tool_calls": [call]}]  # fmt: skip
    frames = [openai_chunk(delta) for delta in deltas]
    frames.append(openai_chunk({}, finish="tool_calls"))
    return [*frames, openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n"]


def test_codex_hands_the_models_reasoning_back_in_a_tool_loop(
    fresh: ResponsesBox, tmp_path: Path
) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(raw=thinking_then_exec()), Reply(content="Echoed."))
    done = codex_exec(fresh, tmp_path, key, "Run echo.")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "last.txt").read_text().strip() == "Echoed."
    chats = [r.body for r in fresh.openai_fake.requests if r.path == "/v1/chat/completions"]
    assert len(chats) == 2
    (turn,) = [m for m in chats[1]["messages"] if m.get("tool_calls")]
    assert turn["tool_calls"][0]["id"] == "call_k1"
    assert turn["reasoning_content"] == THOUGHT
    (result,) = [m for m in chats[1]["messages"] if m["role"] == "tool"]
    assert "box-tool-loop" in result["content"]
