"""Claude's thinking as the reasoning item's `summary` when the request asks `reasoning.summary`
(Codex sends `"auto"` by default and shows only summaries): Claude 4 and later return summarized
thinking, so it truthfully is one. Unstreamed and streamed (OpenAI's summary events, as the
openai SDK parses them); handed back, the signed block goes to Anthropic exactly as it came.
Without `reasoning.summary`, and for a chat model's own reasoning, the text stays raw `content`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fakes.anthropic_upstream import Reply, ToolUse
from tests.fakes.openai_upstream import Reply as OpenAIReply
from tests.messages.conftest import openai_chunk
from tests.responses.conftest import ANTHROPIC_MODEL, OPENAI_MODEL, ResponsesBox
from tests.responses.test_codex import CODEX, codex_exec

THOUGHT = "The user wants a greeting; keep it short."
ASKED = {"effort": "high", "summary": "auto"}
ENCRYPTED = ["reasoning.encrypted_content"]
SUMMARY_EVENTS = [
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done",
    "response.reasoning_summary_part.done",
]


def thinking_reply() -> Reply:
    return Reply(text="Hello!", thinking=THOUGHT, chunk_chars=12)


def handed_back(box: ResponsesBox, key: str, output: list[Any]) -> dict[str, Any]:
    """Sends the answer's items back with a next question; the thinking block Anthropic got."""
    box.fake.script(Reply(text="Again."))
    items = [item.model_dump(exclude_none=True) for item in output]
    box.openai(key).responses.create(
        model=ANTHROPIC_MODEL, reasoning=ASKED, include=ENCRYPTED,
        input=[{"role": "user", "content": "Hi."}, *items,
               {"role": "user", "content": "Again."}],
    )  # fmt: skip
    (turn,) = [m for m in box.fake.requests[-1].body["messages"] if m["role"] == "assistant"]
    return dict(turn["content"][0])


@pytest.mark.parametrize("summary", ["auto", "concise", "detailed"])
def test_claudes_thinking_is_the_summary_unstreamed(fresh: ResponsesBox, summary: str) -> None:
    _, key = fresh.new_key()
    fresh.fake.script(thinking_reply())
    answer = fresh.openai(key).responses.create(
        model=ANTHROPIC_MODEL, input="Hi.", include=ENCRYPTED,
        reasoning={"effort": "high", "summary": summary},
    )  # fmt: skip
    reasoning = answer.output[0]
    assert reasoning.type == "reasoning"
    assert [(s.type, s.text) for s in reasoning.summary] == [("summary_text", THOUGHT)]
    assert reasoning.content is None
    assert answer.output_text == "Hello!"
    block = handed_back(fresh, key, answer.output)
    assert block == {"type": "thinking", "thinking": THOUGHT, "signature": Reply().signature}


def test_claudes_thinking_streams_as_the_summary(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    fresh.fake.script(thinking_reply())
    stream = fresh.openai(key).responses.create(
        model=ANTHROPIC_MODEL, input="Hi.", include=ENCRYPTED, reasoning=ASKED, stream=True
    )
    events = list(stream)
    kinds = [e.type for e in events]
    assert not any(kind.startswith("response.reasoning_text") for kind in kinds)
    ours = [e for e in events if e.type in SUMMARY_EVENTS]
    middle = [e.type for e in ours[1:-2]]
    assert [e.type for e in ours[:1] + ours[-2:]] == [SUMMARY_EVENTS[0], *SUMMARY_EVENTS[2:]]
    assert len(middle) > 1 and set(middle) == {SUMMARY_EVENTS[1]}  # live deltas
    (item_id,) = {e.item_id for e in ours}
    assert {(e.output_index, e.summary_index) for e in ours} == {(0, 0)}
    added, *deltas, text_done, part_done = ours
    assert (added.part.type, added.part.text) == ("summary_text", "")
    assert "".join(d.delta for d in deltas) == THOUGHT == text_done.text
    assert (part_done.part.type, part_done.part.text) == ("summary_text", THOUGHT)
    start = kinds.index("response.output_item.added")
    assert kinds[start + 1] == SUMMARY_EVENTS[0]
    assert kinds[kinds.index(SUMMARY_EVENTS[3]) + 1] == "response.output_item.done"
    dumped = [e.model_dump(exclude_unset=True) for e in ours]
    assert [sorted(d) for d in dumped] == [
        sorted(["type", "sequence_number", "item_id", "output_index", "summary_index", *more])
        for more in (["part"], *[["delta"]] * len(middle), ["text"], ["part"])
    ]
    final = events[-1].response
    reasoning = final.output[0]
    assert reasoning.id == item_id and reasoning.content is None
    assert [(s.type, s.text) for s in reasoning.summary] == [("summary_text", THOUGHT)]
    block = handed_back(fresh, key, final.output)
    assert block == {"type": "thinking", "thinking": THOUGHT, "signature": Reply().signature}


def test_without_a_summary_claudes_thinking_stays_content(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    fresh.fake.script(thinking_reply(), thinking_reply())
    client, asked = fresh.openai(key), {"effort": "high"}
    unstreamed = client.responses.create(
        model=ANTHROPIC_MODEL, input="Hi.", include=ENCRYPTED, reasoning=asked
    )
    with client.responses.stream(
        model=ANTHROPIC_MODEL, input="Hi.", include=ENCRYPTED, reasoning=asked
    ) as stream:
        streamed = stream.get_final_response()
    for answer in (unstreamed, streamed):
        reasoning = answer.output[0]
        assert reasoning.summary == []
        assert [(c.type, c.text) for c in reasoning.content or ()] == [("reasoning_text", THOUGHT)]


def test_a_chat_models_reasoning_stays_raw_with_a_summary_asked(fresh: ResponsesBox) -> None:
    _, key = fresh.new_key()
    frames = [openai_chunk({"role": "assistant", "content": None}),
              openai_chunk({"reasoning_content": THOUGHT}), openai_chunk({"content": "Hello!"}),
              openai_chunk({}, finish="stop"), b"data: [DONE]\n\n"]  # fmt: skip
    fresh.openai_fake.push(OpenAIReply(raw=frames))
    with fresh.openai(key).responses.stream(
        model=OPENAI_MODEL, input="Hi.", reasoning=ASKED
    ) as stream:
        events = [event.type for event in stream]
        answer = stream.get_final_response()
    assert not any("summary" in kind for kind in events)
    reasoning = answer.output[0]
    assert reasoning.summary == []
    assert [(c.type, c.text) for c in reasoning.content or ()] == [("reasoning_text", THOUGHT)]


def test_a_summary_cut_at_the_cap_is_marked_incomplete(fresh: ResponsesBox) -> None:
    """Claude stopped by max_tokens while it thought: the summary part's `.done` says
    `status: "incomplete"`, as OpenAI marks a summary part whose generation was cut."""
    _, key = fresh.new_key()
    fresh.fake.script(Reply(text="", thinking=THOUGHT, stop_reason="max_tokens"))
    events = list(
        fresh.openai(key).responses.create(
            model=ANTHROPIC_MODEL, input="Hi.", reasoning=ASKED, stream=True
        )
    )
    (done,) = [e for e in events if e.type == "response.reasoning_summary_part.done"]
    assert done.status == "incomplete" and done.part.text == THOUGHT
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.output[0].summary[0].text == THOUGHT


@pytest.mark.skipif(CODEX is None, reason="Codex is not installed")
def test_codex_shows_claudes_thinking_in_a_tool_loop(fresh: ResponsesBox, tmp_path: Path) -> None:
    """The real Codex (its default `reasoning.summary` "auto") prints Claude's thinking, runs
    the tool, and hands the signed thinking back with the call, exactly as Claude gave it."""
    _, key = fresh.new_key()
    use = ToolUse("toolu_s1", "exec_command", {"cmd": "echo summary-loop"})
    first = Reply(text="", thinking=THOUGHT, tool_uses=[use])
    fresh.fake.script(first, Reply(text="Echoed."))
    done = codex_exec(fresh, tmp_path, key, "Run echo.", model=ANTHROPIC_MODEL)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "last.txt").read_text().strip() == "Echoed."
    assert THOUGHT in done.stdout + done.stderr
    turn, results = fresh.fake.requests[-1].body["messages"][-2:]
    assert turn["content"][0] == {"type": "thinking", "thinking": THOUGHT,
                                  "signature": first.signature}  # fmt: skip
    assert turn["content"][1]["id"] == "toolu_s1"
    assert "summary-loop" in str(results["content"][0]["content"])
