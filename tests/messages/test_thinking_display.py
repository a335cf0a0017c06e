"""`thinking.display: "omitted"` on /v1/messages to an `openai` provider: as Anthropic answers
it, the thinking blocks come with an empty `thinking` text (the signature still there, carrying
the text back: a DeepSeek tool loop still gets its reasoning) and a stream sends no thinking
text; the field itself is not sent to the Chat Completions upstream. Without it (or with
"summarized") the upstream's reasoning is shown as before."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from codelace_box.providers.reasoning_details import sealed_reasoning
from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import (
    NEEDS_SDK,
    OPENAI_ALIAS,
    OPENAI_PRICES,
    MessagesBox,
    openai_chunk,
    usd_nanos,
)
from tests.messages.test_claude_code import CLAUDE, claude_env, notes_home
from tests.messages.test_reasoning_roundtrip import TOOLS, assistant_turns, thinking_then_call

pytestmark = NEEDS_SDK

REASONING = "The user greets me; a greeting back."
USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
# Displays that keep the reasoning out of sight: "updates" (Claude Code 2.1.332 in stream-json
# and its own screen, with the thinking-display-updates beta) shows only progress notes written
# between tool calls, which an OpenAI-compatible upstream never writes.
HIDDEN = ("omitted", "updates")
ASKED: dict[str, Any] = {"model": OPENAI_ALIAS, "max_tokens": 4000,
                         "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip


def thinking(display: str | None) -> dict[str, Any]:
    """The request's thinking (extended, with this display, or none given)."""
    shown = {"display": display} if display else {}
    return {"thinking": {"type": "enabled", "budget_tokens": 2048, **shown}}


def reasoned_answer(reasoning: str = REASONING, **answer: Any) -> Reply:
    """A DeepSeek-like chat completion: reasoning_content beside the answer (its text, or
    other message fields given)."""
    message = {"role": "assistant", "content": "Hello.", "reasoning_content": reasoning, **answer}
    finish = "tool_calls" if "tool_calls" in answer else "stop"
    completion = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
                  "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                  "usage": USAGE}  # fmt: skip
    return Reply(raw=[json.dumps(completion).encode()], content_type="application/json")


def reasoned_stream() -> Reply:
    """The same, streamed: two reasoning pieces, then the answer."""
    half = len(REASONING) // 2
    return Reply(raw=[
        openai_chunk({"role": "assistant", "content": None,
                      "reasoning_content": REASONING[:half]}),
        openai_chunk({"reasoning_content": REASONING[half:]}),
        openai_chunk({"content": "Hello."}), openai_chunk({}, "stop"),
        openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n",
    ])  # fmt: skip


def thinking_blocks(message: Any) -> list[Any]:
    return [block for block in message.content if block.type == "thinking"]


def sent_upstream(box: MessagesBox) -> dict[str, Any]:
    """The chat completion request the fake received (with the whole request as text)."""
    body = box.openai_fake.requests[-1].body
    assert "display" not in json.dumps(body) and "thinking" not in body
    return body


@pytest.mark.parametrize("display", ["omitted", "updates", "summarized", None])
def test_an_answers_thinking_text_is_left_out_when_omitted(
    fresh: MessagesBox, display: str | None
) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(reasoned_answer())
    message = fresh.client(key).messages.create(**ASKED, extra_body=thinking(display))
    [block] = thinking_blocks(message)
    assert block.thinking == ("" if display in HIDDEN else REASONING)
    assert bool(block.signature) is (display in HIDDEN)  # carries the text left out
    assert [b.text for b in message.content if b.type == "text"] == ["Hello."]
    assert sent_upstream(fresh)["reasoning_effort"] == "low"


@pytest.mark.parametrize("display", ["omitted", "updates", "summarized"])
def test_a_streams_thinking_text_is_left_out_when_omitted(fresh: MessagesBox, display: str) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(reasoned_stream())
    client = fresh.client(key)
    with client.messages.stream(**ASKED, extra_body=thinking(display)) as stream:
        events = list(stream)
        message = stream.get_final_message()
    deltas = [e.delta for e in events if e.type == "content_block_delta"]
    sent = "".join(d.thinking for d in deltas if d.type == "thinking_delta")
    starts = [e.content_block.type for e in events if e.type == "content_block_start"]
    assert starts == ["thinking", "text"]  # the block is there either way
    [block] = thinking_blocks(message)
    assert sent == block.thinking == ("" if display in HIDDEN else REASONING)
    assert bool(block.signature) is (display in HIDDEN)
    assert [b.text for b in message.content if b.type == "text"] == ["Hello."]
    assert sent_upstream(fresh)["stream"] is True


@pytest.mark.parametrize("stream", [False, True])
def test_omitted_reasoning_still_goes_back_in_a_tool_loop(fresh: MessagesBox, stream: bool) -> None:
    """The turn that called tools is handed back as the client got it (no thinking text): the
    upstream still gets its reasoning_content (DeepSeek refuses the turn without it)."""
    _, key = fresh.new_key()
    client = fresh.client(key)
    said = "I should read a."
    function = {"name": "Read", "arguments": '{"file_path": "a"}'}
    call: dict[str, Any] = {"id": "call_1", "type": "function", "function": function}
    fresh.openai_fake.push(thinking_then_call(said, function["arguments"]) if stream
                           else reasoned_answer(said, content=None, tool_calls=[call]))  # fmt: skip
    asked: dict[str, Any] = {
        **ASKED,
        "tools": TOOLS,
        "messages": [{"role": "user", "content": "read a"}],
    }
    if stream:
        with client.messages.stream(**asked, extra_body=thinking("omitted")) as events:
            first = events.get_final_message()
    else:
        first = client.messages.create(**asked, extra_body=thinking("omitted"))
    assert [(b.type, getattr(b, "thinking", None)) for b in first.content] == [
        ("thinking", ""), ("tool_use", None)]  # fmt: skip
    assert said not in first.model_dump_json()  # not in clear anywhere in the answer
    fresh.openai_fake.push(Reply(content="It says hi."))
    result = {"type": "tool_result", "tool_use_id": "call_1", "content": "hi"}
    history = [*asked["messages"],
               {"role": "assistant", "content": [b.model_dump() for b in first.content]},
               {"role": "user", "content": [result]}]  # fmt: skip
    client.messages.create(**{**asked, "messages": history}, extra_body=thinking("omitted"))
    [turn] = assistant_turns(fresh)
    assert turn["reasoning_content"] == said


@pytest.mark.skipif(CLAUDE is None, reason="Claude Code is not installed")
def test_claude_codes_stream_json_shows_no_reasoning(fresh: MessagesBox, tmp_path: Path) -> None:
    """`claude -p --output-format stream-json` (display "updates") on a DeepSeek-like model: the
    reasoning is nowhere in what the user sees, and still goes back with the tool loop."""
    _, key = fresh.new_key()
    home, notes = notes_home(tmp_path)
    said = "Secretly I plan to read notes.txt."
    fresh.openai_fake.push(thinking_then_call(said, json.dumps({"file_path": str(notes)})),
                           Reply(content="The word is pelican."))  # fmt: skip
    env = {**claude_env(fresh, home), "ANTHROPIC_AUTH_TOKEN": key}
    assert CLAUDE is not None
    command = [CLAUDE, "-p", "What is the secret word in notes.txt?", "--model", OPENAI_ALIAS,
               "--allowedTools", "Read", "--output-format", "stream-json", "--verbose"]  # fmt: skip
    done = subprocess.run(command, env=env, cwd=home, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1])["result"] == "The word is pelican."
    assert said not in done.stdout
    calling = [t for t in assistant_turns(fresh) if t.get("tool_calls")]
    assert calling and calling[-1].get("reasoning_content") == said


PIECE = "I weigh the greeting. "  # a reasoning piece (22 characters)
CAP, PAST_CAP = 2100, 2000  # a max_tokens above thinking()'s budget; pieces well past it


def long_reasoning(pieces: int) -> Reply:
    """A stream of many reasoning pieces, then the answer, with no usage (an upstream that
    never counts: the box counts what it streamed)."""
    return Reply(raw=[
        openai_chunk({"role": "assistant", "content": None, "reasoning_content": PIECE}),
        *(openai_chunk({"reasoning_content": PIECE}) for _ in range(pieces)),
        openai_chunk({"content": "Hello."}), openai_chunk({}, "stop"), b"data: [DONE]\n\n",
    ])  # fmt: skip


def streamed_row(box: MessagesBox, display: str, max_tokens: int, pieces: int) -> Any:
    """The stop reason of a stream of `long_reasoning` and its usage row."""
    email, key = box.new_key()
    box.openai_fake.push(long_reasoning(pieces))
    asked = {**ASKED, "max_tokens": max_tokens}
    with box.client(key).messages.stream(**asked, extra_body=thinking(display)) as stream:
        stop = stream.get_final_message().stop_reason
    [row] = box.usage_rows(email)
    return stop, row


def test_omitted_reasoning_is_counted_as_shown_reasoning(fresh: MessagesBox) -> None:
    """Left out of the stream, the reasoning was still produced: an upstream that reports no
    usage is charged for it as when it is shown (it was charged for the answer alone)."""
    _, shown = streamed_row(fresh, "summarized", 4000, 40)
    stop, omitted = streamed_row(fresh, "omitted", 4000, 40)
    assert stop == "end_turn" and omitted["estimated"] == 1
    assert omitted["output_tokens"] == shown["output_tokens"] > 40 * len(PIECE) // 4
    charged = ((omitted["input_tokens"], OPENAI_PRICES["in"]),
               (omitted["output_tokens"], OPENAI_PRICES["out"]))  # fmt: skip
    assert omitted["cost_nanos"] == usd_nanos(*charged)


def test_omitted_reasoning_is_cut_at_the_output_cap(fresh: MessagesBox) -> None:
    """An upstream reasoning on past the reserved cap is cut there, shown or not."""
    for display in ("summarized", "omitted"):  # (the cap above the budget, as Anthropic wants)
        stop, row = streamed_row(fresh, display, CAP, PAST_CAP)
        assert stop == "max_tokens", display
        assert (row["status"], row["error_code"]) == ("ok", "output_cap"), display


def test_omitted_reasoning_cut_at_the_cap_keeps_its_signature(fresh: MessagesBox) -> None:
    """The cut closes the open thinking block as a whole stream does, its reasoning sealed in
    its signature (it was stopped without one: a tool loop would lose the reasoning)."""
    _, key = fresh.new_key()
    fresh.openai_fake.push(long_reasoning(PAST_CAP))
    asked = {**ASKED, "max_tokens": CAP}
    with fresh.client(key).messages.stream(**asked, extra_body=thinking("omitted")) as stream:
        events = list(stream)
        message = stream.get_final_message()
    assert message.stop_reason == "max_tokens"
    [block] = thinking_blocks(message)
    assert block.thinking == ""
    sealed = sealed_reasoning(block.signature)
    assert sealed.startswith(PIECE * 2) and set(sealed.split(PIECE)) == {""}, sealed[:200]
    kinds = [event.type for event in events]  # (the SDK's own name for a signature_delta)
    assert kinds[-4:] == ["signature", "content_block_stop", "message_delta", "message_stop"]
