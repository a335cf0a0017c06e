"""/v1/messages answers name the model as the client asked for it (as Anthropic echoes it): an
alias (`claude-sonnet-4-5-20250929`, what Claude Code sends by default) stays the alias, not
the catalog id behind it. Claude Code drops the signed thinking blocks of an answer whose model
is not the one it asked for (signatures are bound to a model), and Anthropic then refuses the
tool loop's next turn with thinking on (400 "a final `assistant` message must start with a
thinking block")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.anthropic_upstream import Reply, ToolUse
from tests.messages.conftest import ALIAS, OPENAI_ALIAS, MessagesBox
from tests.messages.test_claude_code import CLAUDE, notes_home, run_claude


@pytest.mark.parametrize("model", [ALIAS, OPENAI_ALIAS])
def test_the_answer_names_the_model_asked_for(fresh: MessagesBox, model: str) -> None:
    _, key = fresh.new_key()
    client = fresh.client(key)
    asked = [{"role": "user", "content": "hi"}]
    assert client.messages.create(model=model, max_tokens=50, messages=asked).model == model
    with client.messages.stream(model=model, max_tokens=50, messages=asked) as stream:
        assert stream.get_final_message().model == model


@pytest.mark.skipif(CLAUDE is None, reason="Claude Code is not installed")
def test_claude_code_keeps_thinking_in_a_tool_loop_on_an_alias(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    _, key = fresh.new_key()
    home, notes = notes_home(tmp_path)
    use = ToolUse(id="toolu_9", name="Read", input={"file_path": str(notes)})
    fresh.fake.script(Reply(text="", thinking="Read it.", tool_uses=[use]),
                      Reply(text="The word is pelican."))  # fmt: skip
    answer = run_claude(fresh, home, {"ANTHROPIC_AUTH_TOKEN": key},
                        "What is the secret word in notes.txt?", "--model", ALIAS,
                        "--allowedTools", "Read")  # fmt: skip
    assert answer["result"] == "The word is pelican."
    turn = fresh.fake.requests[-1].body["messages"][-2]
    assert turn["role"] == "assistant" and turn["content"][0]["type"] == "thinking"
