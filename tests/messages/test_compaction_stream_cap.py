"""A server-side compaction's summary in a Messages stream is not output under `max_tokens`.

With `context_management` edit `compact_20260112`, Anthropic first summarises the conversation
in a sampling of its own (reported in `usage.iterations`, outside the top-level output count
and outside the request's `max_tokens`) and streams that summary as a `compaction` block
(`compaction_delta` with its `content`), then answers. The relay counted the summary's text
toward the reserved output cap, so a long summary with a modest `max_tokens` cut the answer off
after the compaction block, as if the model had hit max_tokens.
"""

from __future__ import annotations

import json

import httpx

from tests.fakes.anthropic_upstream import Reply
from tests.messages.conftest import MODEL, MessagesBox
from tests.support import TLS

SUMMARY = "The user and the assistant worked through a long refactoring session. " * 60
COMPACTION_EVENTS = [
    {"type": "content_block_start", "index": 0, "content_block": {"type": "compaction"}},
    {"type": "content_block_delta", "index": 0,
     "delta": {"type": "compaction_delta", "content": SUMMARY}},
    {"type": "content_block_stop", "index": 0},
]  # fmt: skip


def test_a_compaction_summary_does_not_cut_the_answer_at_max_tokens(fresh: MessagesBox) -> None:
    email, key = fresh.new_key()
    reply = Reply(text="Here is the short answer you asked for.", output_tokens=12,
                  extra_events=COMPACTION_EVENTS,
                  compaction={"input_tokens": 60000, "output_tokens": 1100})  # fmt: skip
    fresh.fake.script(reply)
    body = {"model": MODEL, "max_tokens": 200, "stream": True,
            "messages": [{"role": "user", "content": "Go on."}],
            "context_management": {"edits": [{"type": "compact_20260112"}]}}  # fmt: skip
    answer = httpx.post(f"{fresh.server.base_url}/v1/messages", json=body, timeout=30,
                        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                        verify=TLS)  # fmt: skip
    assert answer.status_code == 200, answer.text
    datas = [json.loads(line[6:]) for line in answer.text.splitlines() if line.startswith("data: ")]
    text = "".join(d["delta"].get("text", "") for d in datas if d["type"] == "content_block_delta")
    assert text == "Here is the short answer you asked for."
    final = next(d for d in datas if d["type"] == "message_delta")
    assert final["delta"]["stop_reason"] == "end_turn"
    assert fresh.usage_rows(email)[-1]["error_code"] is None
