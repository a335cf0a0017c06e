"""The real Codex CLI (`codex exec`) through turns the other suites drive with the SDK only:
parallel tool calls on an `anthropic` provider (signed thinking and both results handed back in
one turn, cache reads and writes priced), a chat model's reasoning across two tool-calling turns
(parallel calls in the first), an image attached with `-i` and one its view_image tool returns
(both provider kinds), and Anthropic's overloaded_error in the middle of a stream. After each,
every answered call is charged once at the exact price and nothing is left held. Skipped, as
test_codex.py is, without `codex`.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.anthropic_upstream import Reply, ToolUse
from tests.fakes.openai_upstream import Reply as OpenAIReply
from tests.messages.conftest import openai_chunk, usd_nanos
from tests.messages.test_claude_code_turns import red_png
from tests.responses.conftest import ANTHROPIC_MODEL, OPENAI_MODEL, PRICES, ResponsesBox
from tests.responses.test_codex import CODEX, CONFIG, codex_exec, pytestmark  # noqa: F401

CREDIT = 20_000_000_000  # new_key()'s $20 in nanos
USAGE = {"prompt_tokens": 300, "completion_tokens": 40, "total_tokens": 340}


def codex_with_image(box: ResponsesBox, home: Path, key: str, model: str, image: Path) -> str:
    """`codex exec -i IMAGE` against the box (as test_codex.codex_exec); its last message."""
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    config = CONFIG.format(model=model, base_url=box.server.base_url)
    (codex_home / "config.toml").write_text(config)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "CODEX_HOME": str(codex_home), "CODELACE_API_KEY": key}  # fmt: skip
    assert CODEX is not None
    out = home / "last.txt"
    done = subprocess.run([CODEX, "exec", "--skip-git-repo-check", "-i", str(image),
                           "--output-last-message", str(out), "What colour is it?"], env=env,
                          cwd=home, capture_output=True, text=True, timeout=60, check=False,
                          stdin=subprocess.DEVNULL)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return out.read_text().strip()


def calls_with_reasoning(thought: str, commands: dict[str, str]) -> OpenAIReply:
    """A DeepSeek-style stream: reasoning_content, then one exec_command call per command."""
    frames = [openai_chunk({"role": "assistant", "content": None}),
              openai_chunk({"reasoning_content": thought})]  # fmt: skip
    for index, (call_id, command) in enumerate(commands.items()):
        arguments = json.dumps({"cmd": command})
        call = {"index": index, "id": call_id, "type": "function",
                "function": {"name": "exec_command", "arguments": arguments}}  # fmt: skip
        frames.append(openai_chunk({"tool_calls": [call]}))
    frames += [openai_chunk({}, finish="tool_calls"), openai_chunk({}, usage=USAGE)]
    return OpenAIReply(raw=[*frames, b"data: [DONE]\n\n"])


def chat_turns(box: ResponsesBox) -> list[list[dict[str, Any]]]:
    return [r.body["messages"] for r in box.openai_fake.requests]


def test_parallel_calls_on_an_anthropic_model(fresh: ResponsesBox, tmp_path: Path) -> None:
    """Two tool_use blocks after signed thinking: Codex runs both; the next turn carries the
    thinking, both calls and both results in one user message (as Anthropic demands). Cache
    reads and writes count as input at this model's prices (no cache prices: the input's)."""
    email, key = fresh.new_key()
    uses = [ToolUse("toolu_a", "exec_command", {"cmd": "echo alpha-one"}),
            ToolUse("toolu_b", "exec_command", {"cmd": "echo beta-two"})]  # fmt: skip
    fresh.fake.script(Reply(text="", thinking="Both at once.", tool_uses=uses, input_tokens=700,
                            output_tokens=40, cache_read_input_tokens=300,
                            cache_creation_input_tokens=100),
                      Reply(text="Both ran.", input_tokens=800, output_tokens=5))  # fmt: skip
    done = codex_exec(fresh, tmp_path, key, "Run two echos.", model=ANTHROPIC_MODEL)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "last.txt").read_text().strip() == "Both ran."
    turn, results = fresh.fake.requests[-1].body["messages"][-2:]
    assert [b["type"] for b in turn["content"]] == ["thinking", "tool_use", "tool_use"]
    outputs = {b["tool_use_id"]: str(b["content"]) for b in results["content"]}
    assert "alpha-one" in outputs["toolu_a"] and "beta-two" in outputs["toolu_b"]
    rows = fresh.usage_rows(email)
    costs = [usd_nanos((1100, PRICES["in"]), (40, PRICES["out"])),
             usd_nanos((800, PRICES["in"]), (5, PRICES["out"]))]  # fmt: skip
    assert [(r["input_tokens"], r["cache_read_tokens"], r["cache_write_tokens"], r["cost_nanos"])
            for r in rows] == [(1100, 300, 100, costs[0]), (800, 0, 0, costs[1])]  # fmt: skip
    assert fresh.balance_nanos(email) == (CREDIT - sum(costs), 0)


def test_a_chat_models_reasoning_goes_back_with_each_turns_calls(
    fresh: ResponsesBox, tmp_path: Path
) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(
        calls_with_reasoning("First thought.", {"call_a1": "echo a1", "call_a2": "echo a2"}),
        calls_with_reasoning("Second thought.", {"call_b1": "echo b1"}),
        OpenAIReply(content="Done.", prompt_tokens=500, completion_tokens=2),
    )
    done = codex_exec(fresh, tmp_path, key, "Run the echos.")
    assert done.returncode == 0, done.stderr[-2000:]
    last = chat_turns(fresh)[-1]
    sent = [(m.get("reasoning_content"), [c["id"] for c in m["tool_calls"]])
            for m in last if m.get("tool_calls")]  # fmt: skip
    assert sent == [("First thought.", ["call_a1", "call_a2"]), ("Second thought.", ["call_b1"])]
    assert [m["tool_call_id"] for m in last if m["role"] == "tool"] == ["call_a1", "call_a2",
                                                                        "call_b1"]  # fmt: skip
    call = usd_nanos((300, PRICES["in"]), (40, PRICES["out"]))
    costs = [call, call, usd_nanos((500, PRICES["in"]), (2, PRICES["out"]))]
    assert [r["cost_nanos"] for r in fresh.usage_rows(email)] == costs
    assert fresh.balance_nanos(email) == (CREDIT - sum(costs), 0)


@pytest.mark.parametrize("model", [OPENAI_MODEL, ANTHROPIC_MODEL])
def test_an_attached_image_reaches_the_model(
    fresh: ResponsesBox, tmp_path: Path, model: str
) -> None:
    _, key = fresh.new_key()
    image = tmp_path / "red.png"
    image.write_bytes(red_png())
    fresh.openai_fake.push(OpenAIReply(content="Red."))
    fresh.fake.script(Reply(text="Red."))
    assert codex_with_image(fresh, tmp_path / "home", key, model, image) == "Red."
    if model == OPENAI_MODEL:
        parts = chat_turns(fresh)[0][-1]["content"]
        (url,) = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
        assert url.startswith("data:image/png;base64,")
    else:
        blocks = fresh.fake.requests[0].body["messages"][-1]["content"]
        (source,) = [b["source"] for b in blocks if b["type"] == "image"]
        assert (source["type"], source["media_type"]) == ("base64", "image/png")


@pytest.mark.parametrize("model", [OPENAI_MODEL, ANTHROPIC_MODEL])
def test_the_image_view_image_returns_reaches_the_model(
    fresh: ResponsesBox, tmp_path: Path, model: str
) -> None:
    """Codex's view_image answers with an input_image in the function_call_output: a chat
    tool message takes text only (the image follows in a user message), Anthropic's turn
    carries it beside the tool_result."""
    _, key = fresh.new_key()
    image = tmp_path / "red.png"
    image.write_bytes(red_png())
    arguments = json.dumps({"path": str(image)})
    fresh.openai_fake.push(OpenAIReply(content="", tool_calls=[{"name": "view_image",
                                                               "arguments": arguments}]),
                           OpenAIReply(content="Red."))  # fmt: skip
    fresh.fake.script(Reply(text="", tool_uses=[ToolUse("toolu_v", "view_image",
                                                        {"path": str(image)})]),
                      Reply(text="Red."))  # fmt: skip
    done = codex_exec(fresh, tmp_path, key, "Look at red.png", model=model)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "last.txt").read_text().strip() == "Red."
    if model == OPENAI_MODEL:
        *_, result, after = chat_turns(fresh)[-1]
        assert result["role"] == "tool" and after["role"] == "user"
        assert after["content"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    else:
        blocks = fresh.fake.requests[-1].body["messages"][-1]["content"]
        assert [b["type"] for b in blocks] == ["tool_result", "image"]
        assert blocks[0]["tool_use_id"] == "toolu_v"


def test_an_overload_in_the_middle_of_an_anthropic_stream(
    fresh: ResponsesBox, tmp_path: Path
) -> None:
    """overloaded_error after the answer began: Codex reconnects once and shows the second
    answer; the cut call costs nothing."""
    email, key = fresh.new_key()
    fresh.fake.script(Reply(text="An answer that an overload cuts short.",
                            error_type="overloaded_error", error_message="Overloaded",
                            error_after_deltas=3),
                      Reply(text="After the overload."))  # fmt: skip
    done = codex_exec(fresh, tmp_path, key, "Say hello.", model=ANTHROPIC_MODEL)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "last.txt").read_text().strip() == "After the overload."
    one = usd_nanos((25, PRICES["in"]), (15, PRICES["out"]))
    rows = fresh.usage_rows(email)
    assert [(r["status"], r["cost_nanos"]) for r in rows] == [("error", 0), ("ok", one)]
    assert fresh.balance_nanos(email) == (CREDIT - one, 0)
