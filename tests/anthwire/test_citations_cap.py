"""/v1/messages to an `anthropic` provider: the text a citation quotes (`cited_text`, which
Anthropic does not count as output tokens) is no output for the reserved cap, so an answer with
long citations within its max_tokens is relayed whole, not cut as if it had reached it."""

from __future__ import annotations

import json

from tests.anthwire.conftest import MODEL, WireBox, cost_nanos
from tests.fakes import anthropic_wire as wire
from tests.fakes.hostile_upstream import SSE, Act, HostileUpstream

MAX_TOKENS = 50
FINAL = {"input_tokens": 900, "output_tokens": 24}
WORDS = [f"word{n} " for n in range(12)]  # 12 pieces of text, 24 tokens as reported


def _citation(n: int) -> dict[str, object]:
    """A document citation quoting a long passage (cited_text: free, not output)."""
    quoted = f"Passage {n}: " + "the report says so in many words " * 12
    return {"type": "citations_delta", "citation": {
        "type": "char_location", "cited_text": quoted, "document_index": 0,
        "document_title": "Annual report", "start_char_index": 0,
        "end_char_index": len(quoted)}}  # fmt: skip


def _answer() -> list[dict[str, object]]:
    deltas = [wire._text(w) for w in WORDS[:6]] + [_citation(n) for n in range(4)]
    deltas += [wire._text(w) for w in WORDS[6:]]
    block = wire._block(0, {"type": "text", "text": "", "citations": []}, *deltas)
    start = wire._start({"input_tokens": 900, "output_tokens": 1})
    return [start, *block, *wire._end("end_turn", FINAL)]


def test_cited_text_is_no_output_for_the_cap(box: WireBox, hostile: HostileUpstream) -> None:
    events = _answer()
    email, key = box.new_user("5")
    hostile.push(Act(200, [wire.frame(event) for event in events], content_type=SSE))
    asked = [{"role": "user", "content": "Summarize the report, with citations."}]
    body = {"model": MODEL, "max_tokens": MAX_TOKENS, "stream": True, "messages": asked}
    with box.http(key) as http:
        text = http.post("/v1/messages", json=body, headers={"x-api-key": key}).text
    relayed = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    sent = json.loads(json.dumps(events))
    sent[0]["message"]["model"] = MODEL
    assert relayed == sent  # every word and citation, ended for end_turn, not max_tokens
    balance, held = box.balance_nanos(email)
    assert (5_000_000_000 - balance, held) == (cost_nanos(FINAL), 0)
    assert box.usage_rows(email)[-1]["error_code"] is None
