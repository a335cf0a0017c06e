"""An `anthropic` upstream whose stream gives several tool_use blocks the same block index (a
compatible server that numbers every block 0, or repeats one), translated to Chat Completions:
each call keeps a tool call index of its own, so an OpenAI client (which joins the deltas of one
index into one call) gets every call apart, not two of them run together."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes.hostile_upstream import (
    SSE,
    Act,
    HostileUpstream,
    anthropic_event,
    anthropic_stream,
)
from tests.hostile.conftest import HostileBox, events

pytestmark = pytest.mark.timeout(60)


def tool_blocks(indexes: list[int]) -> list[bytes]:
    """message_start, a tool_use block at each of `indexes` (input `{"a": n}`), the stop."""
    writes = anthropic_stream(end=False)[:1]
    for n, index in enumerate(indexes):
        block = {"type": "tool_use", "id": f"toolu_{n}", "name": f"f{n}", "input": {}}
        delta = {"type": "input_json_delta", "partial_json": json.dumps({"a": n})}
        writes += [anthropic_event({"type": "content_block_start", "index": index,
                                    "content_block": block}),
                   anthropic_event({"type": "content_block_delta", "index": index,
                                    "delta": delta}),
                   anthropic_event({"type": "content_block_stop", "index": index})]  # fmt: skip
    stop = {"stop_reason": "tool_use", "stop_sequence": None}
    return [*writes, anthropic_event({"type": "message_delta", "usage": {"output_tokens": 9},
                                      "delta": stop}),
            anthropic_event({"type": "message_stop"})]  # fmt: skip


def joined_calls(text: str) -> list[dict[str, Any]]:
    """The tool calls an OpenAI SDK makes of the chunks: the deltas of one index joined."""
    calls: dict[int, dict[str, Any]] = {}
    for data in events(text):
        if data == "[DONE]":
            continue
        for choice in json.loads(data).get("choices") or []:
            for piece in choice["delta"].get("tool_calls") or []:
                call = calls.setdefault(piece["index"], {"id": "", "name": "", "arguments": ""})
                call["id"] += piece.get("id") or ""
                call["name"] += piece.get("function", {}).get("name") or ""
                call["arguments"] += piece.get("function", {}).get("arguments") or ""
    return [calls[index] for index in sorted(calls)]


@pytest.mark.parametrize("indexes", [[0, 0, 0], [1, 1, 2, 2]], ids=["all-zero", "pairs"])
def test_tool_blocks_at_a_repeated_index_stay_apart_in_chat_completions(
    box: HostileBox, hostile: HostileUpstream, indexes: list[int]
) -> None:
    """The third of three blocks at index 0 got the second's tool call index (the count of
    block indexes seen, which a repeated one does not grow): its id, name and arguments were
    joined to the second's ("f1f2", '{"a": 1}{"a": 2}')."""
    email, key = box.new_user("10")
    hostile.push(Act(200, tool_blocks(indexes), SSE))
    answer = box.post(key, "chat", "ha", stream=True)
    assert answer.status_code == 200, answer.text
    calls = joined_calls(answer.text)
    expected = [{"id": f"toolu_{n}", "name": f"f{n}", "arguments": json.dumps({"a": n})}
                for n in range(len(indexes))]  # fmt: skip
    assert calls == expected, answer.text
    row = box.last_row(email)
    assert row["status"] == "ok" and 0 < row["cost_nanos"] <= row["hold_nanos"], row
