"""The real Claude Code client (`claude -p`) in sessions longer than one exchange: a context that
fills and is compacted (by Claude Code's own threshold, or on the upstream's refusal), and a
subagent on another provider than its session. Each answered call is charged once, a refused
one not at all, and nothing stays held. Skipped, as test_claude_code.py is, without `claude`.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes.anthropic_upstream import Reply, ToolUse
from tests.fakes.openai_upstream import Reply as OpenAIReply
from tests.messages.conftest import MODEL, OPENAI_ALIAS, OPENAI_MODEL, MessagesBox
from tests.messages.test_claude_code import (  # noqa: F401
    claude_env,
    completions,
    default_alias,
    default_model,
    notes_home,
    pytestmark,
    run_claude,
)

# The words of Claude Code's (2.1.332) request for a summary of the conversation
SUMMARY_ASKED = "Respond with TEXT ONLY"
OVERFLOW = ("This model's maximum context length is 128000 tokens. However, your messages "
            "resulted in 130512 tokens. Please reduce the length of the messages.")  # fmt: skip


def _last_text(messages: list) -> str:
    """The text of a request's last message (as sent, blocks or a string)."""
    return json.dumps(messages[-1].get("content"))


def _settled_once(box: MessagesBox, email: str, before: int, answered: int) -> None:
    """`answered` usage rows ok, their costs debited; any other (a refused call) free; nothing
    held."""
    rows = box.usage_rows(email)
    assert [r["status"] for r in rows].count("ok") == answered
    assert all(r["cost_nanos"] == 0 for r in rows if r["status"] != "ok")
    after, held = box.balance_nanos(email)
    assert (before - after, held) == (sum(r["cost_nanos"] for r in rows), 0)


def test_auto_compaction_on_an_anthropic_model(fresh: MessagesBox, tmp_path: Path) -> None:
    """A context past Claude Code's compaction threshold (`CLAUDE_CODE_AUTO_COMPACT_WINDOW`):
    it asks the model for a summary through the box, then goes on from it; the summary call is
    a call like any other, passed through and charged once."""
    email, key = fresh.new_key()
    home, notes = notes_home(tmp_path)
    read = ToolUse("toolu_01", "Read", {"file_path": str(notes)})
    again = ToolUse("toolu_02", "Read", {"file_path": str(notes)})
    full = Reply(text="", tool_uses=[read], input_tokens=150_000)
    fresh.fake.script(full, Reply(text="", tool_uses=[again], input_tokens=150_000),
                      Reply(text="<summary>The word is pelican.</summary>"),
                      Reply(text="The word was pelican."))  # fmt: skip
    before, _ = fresh.balance_nanos(email)
    auth = {"ANTHROPIC_AUTH_TOKEN": key, "CLAUDE_CODE_AUTO_COMPACT_WINDOW": "160000"}
    answer = run_claude(fresh, home, auth, "Read notes.txt twice", "--allowedTools", "Read")
    assert answer["result"] == "The word was pelican."
    calls = completions(fresh)
    asked = [i for i, c in enumerate(calls) if SUMMARY_ASKED in _last_text(c.body["messages"])]
    assert asked and asked[-1] < len(calls) - 1, [_last_text(c.body["messages"]) for c in calls]
    assert "pelican" in json.dumps(calls[-1].body["messages"])  # the summary it goes on from
    _settled_once(fresh, email, before, len(calls))


def test_an_overflow_in_a_tool_loop_on_an_openai_model_is_compacted(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    """The openai model's context overflows in the middle of a tool loop: the box says it as
    Anthropic's "prompt is too long", Claude Code compacts (a summary call) and asks again; the
    refused call costs nothing."""
    email, key = fresh.new_key()
    home, notes = notes_home(tmp_path)
    read = {"name": "Read", "arguments": json.dumps({"file_path": str(notes)})}
    refusal = {"message": OVERFLOW, "type": "invalid_request_error", "param": "messages",
               "code": "context_length_exceeded"}  # fmt: skip
    fresh.openai_fake.push(OpenAIReply(content="", tool_calls=[read]),
                           OpenAIReply(status=400, error=refusal),
                           OpenAIReply(content="<summary>The word is pelican.</summary>"),
                           OpenAIReply(content="The word was pelican."))  # fmt: skip
    before, _ = fresh.balance_nanos(email)
    answer = run_claude(fresh, home, {"ANTHROPIC_AUTH_TOKEN": key}, "Read notes.txt",
                        "--model", OPENAI_ALIAS, "--allowedTools", "Read")  # fmt: skip
    assert answer["result"] == "The word was pelican.", answer
    sent = [r.body["messages"] for r in fresh.openai_fake.requests]
    assert len(sent) == 4 and SUMMARY_ASKED in _last_text(sent[2])
    _settled_once(fresh, email, before, 3)


def test_a_subagent_on_an_openai_model_in_an_anthropic_session(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    """A custom subagent on `model: haiku`, Claude Code's small model aliased to an openai one:
    the session's calls go to Anthropic as sent, the subagent's are translated (its own tool
    loop included), and each provider's calls are charged at its model's prices."""
    email, key = fresh.new_key()
    home, notes = notes_home(tmp_path)
    fresh.cli("models", "alias", "claude-haiku-5-5", OPENAI_MODEL)
    fresh.until_reloaded()
    scout = ToolUse("toolu_01", "Agent", {"description": "find the word", "prompt": "Read "
                    "notes.txt and say the secret word", "subagent_type": "scout"})  # fmt: skip
    fresh.fake.script(Reply(text="", thinking="Ask the scout.", tool_uses=[scout]),
                      *[Reply(text="The scout says pelican.")] * 3)  # fmt: skip
    read = {"name": "Read", "arguments": json.dumps({"file_path": str(notes)})}
    fresh.openai_fake.push(OpenAIReply(content="", tool_calls=[read]),
                           OpenAIReply(content="pelican"))  # fmt: skip
    agents = {"scout": {"description": "Finds words in files", "prompt": "You find words.",
                        "model": "haiku", "tools": ["Read"]}}  # fmt: skip
    before, _ = fresh.balance_nanos(email)
    try:
        answer = run_claude(fresh, home, {"ANTHROPIC_AUTH_TOKEN": key}, "Ask the scout",
                            "--agents", json.dumps(agents),
                            "--allowedTools", "Read,Agent")  # fmt: skip
    finally:
        fresh.cli("models", "unalias", "claude-haiku-5-5")
    assert answer["result"] == "The scout says pelican."
    translated = fresh.openai_fake.requests
    assert len(translated) == 2 and "pelican" in json.dumps(translated[1].body["messages"])
    assert all(r.body["model"] == "gpt-5.4-mini" for r in translated)
    calls = completions(fresh)
    handed_back = [b for m in calls[-1].body["messages"] if m["role"] == "assistant"
                   and isinstance(m["content"], list) for b in m["content"]]  # fmt: skip
    thinking = {"type": "thinking", "thinking": "Ask the scout.", "signature": Reply().signature}
    assert thinking in handed_back  # signed by Anthropic, handed back as signed
    rows = fresh.usage_rows(email)
    models = sorted({r["model"] for r in rows})
    assert models == sorted({OPENAI_MODEL, "anthropic/claude-sonnet-4.5"}), models
    _settled_once(fresh, email, before, len(calls) + 2)


def test_fine_grained_tool_streaming_on_both_providers(fresh: MessagesBox, tmp_path: Path) -> None:
    """`CLAUDE_CODE_ENABLE_FINE_GRAINED_TOOL_STREAMING=1`: Claude Code marks its tools
    `eager_input_streaming`; Anthropic is sent them as they are, an openai model plain functions
    (no such field), and the tool loop ends on either."""
    _, key = fresh.new_key()
    home, notes = notes_home(tmp_path)
    read = ToolUse("toolu_01", "Read", {"file_path": str(notes)})
    fresh.fake.script(Reply(text="", tool_uses=[read]), Reply(text="The word is pelican."))
    call = {"name": "Read", "arguments": json.dumps({"file_path": str(notes)})}
    fresh.openai_fake.push(OpenAIReply(content="", tool_calls=[call]),
                           OpenAIReply(content="The word is pelican."))  # fmt: skip
    auth = {"ANTHROPIC_AUTH_TOKEN": key, "CLAUDE_CODE_ENABLE_FINE_GRAINED_TOOL_STREAMING": "1"}
    for model in ((), ("--model", OPENAI_ALIAS)):
        answer = run_claude(fresh, home, auth, "Read notes.txt", "--allowedTools", "Read", *model)
        assert answer["result"] == "The word is pelican.", answer
    eager = [t.get("eager_input_streaming") for c in completions(fresh) for t in c.body["tools"]
             if t["name"] == "Read"]  # fmt: skip
    assert eager == [True, True]
    functions = [t["function"] for r in fresh.openai_fake.requests for t in r.body["tools"]]
    assert functions and all(set(f) <= {"name", "description", "parameters"} for f in functions)


def test_extra_high_effort_on_an_openai_model(fresh: MessagesBox, tmp_path: Path) -> None:
    """`claude --effort xhigh` ("Extra", between high and max) with its default name routed to
    an openai model: the model is asked for high effort, as for max, not the medium an effort
    the translation did not know fell back to."""
    _, key = fresh.new_key()
    fresh.openai_fake.push(OpenAIReply(content="Thought hard."))
    fresh.cli("models", "alias", default_model(), OPENAI_MODEL)
    fresh.until_reloaded()
    try:
        answer = run_claude(fresh, tmp_path / "home", {"ANTHROPIC_AUTH_TOKEN": key}, "Think",
                            "--effort", "xhigh")  # fmt: skip
    finally:
        fresh.cli("models", "alias", default_model(), MODEL)
        fresh.until_reloaded()
    assert answer["result"] == "Thought hard."
    assert [r.body.get("reasoning_effort") for r in fresh.openai_fake.requests] == ["high"]
