"""A stream's output tally counts a delta of a text alone (nearly every chunk) without walking
its items (providers/tally.py `_delta_chars`): the count must be the walk's for every delta,
those it takes the short way and those it walks."""

from __future__ import annotations

from typing import Any

import pytest

from codelace_box.providers.tally import OutputTally, _delta_chars, _walked_chars

DELTAS: list[Any] = [
    {"content": "word0 "},
    {"role": "assistant", "content": ""},
    {},
    {"role": "assistant"},
    {"content": None},
    {"content": "déjà vu 東京"},
    {"content": "an emoji 😀 and 𓀀"},
    {"content": "data:image/png;base64,iVBORw0KGgo="},
    {"index": 0, "type": "text", "id": "x", "content": "typed"},
    {"content": "text", "refusal": "no"},
    {"content": "text", "reasoning": "thought"},
    {"content": "same", "reasoning": "r", "reasoning_content": "r"},
    {"content": [{"type": "text", "text": "a list"}, {"type": "thinking", "thinking": "t"}]},
    {"content": 7},
    {"content": {"text": "an object"}},
    {"content": "x", "audio": {"data": "UklGRg==", "transcript": "hello"}},
    {"role": "assistant", "content": "x", "tool_calls": [{"function": {"arguments": "{}"}}]},
    {"thinking_blocks": [{"thinking": "not output"}], "content": "shown"},
    "a bare text",
    None,
]


@pytest.mark.parametrize("delta", DELTAS)
def test_a_deltas_count_is_the_walks(delta: Any) -> None:
    if isinstance(delta, str) or delta is None:
        expected = _delta_chars(delta)  # (the walk takes no text or None: only the whole does)
        assert expected == ((len(delta), 0, 0) if delta else (0, 0, 0))
        return
    assert _delta_chars(delta) == _walked_chars(delta)


def test_a_streams_chunks_tally_as_walked() -> None:
    tally = OutputTally()
    chunks = [{"choices": [{"index": 0, "delta": delta}]} for delta in DELTAS[:12]]
    carried = [tally.add(chunk) for chunk in chunks]
    expected = [_walked_chars(c["choices"][0]["delta"]) for c in chunks]
    assert carried == [any(e) for e in expected]
    assert tally.ascii_chars == sum(e[0] for e in expected)
    assert tally.other_chars == sum(e[1] for e in expected)
    assert tally.opaque_chars == sum(e[2] for e in expected)
    assert tally.pieces == sum(1 for e in expected if any(e))
