"""A conversation that moves from a model behind an `openai` provider to an Anthropic one (Claude
Code's /model): the first model's reasoning came back as thinking blocks without a signature,
which Anthropic refuses (400); the pass-through leaves those out, and keeps everything else."""

from __future__ import annotations

import httpx

from tests.messages.conftest import ALIAS, OPENAI_ALIAS, MessagesBox

UNSIGNED = {"type": "thinking", "thinking": "DeepSeek's reasoning", "signature": ""}
SIGNED = {"type": "thinking", "thinking": "Claude's", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA"}


def text_block(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


HISTORY = [
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": [UNSIGNED, {"type": "text", "text": "Hello."}]},
    {"role": "user", "content": "think again"},
    {"role": "assistant", "content": [UNSIGNED]},  # cut while it reasoned
    {"role": "user", "content": "and now?"},
    {"role": "assistant", "content": [SIGNED, {"type": "text", "text": "Now."}]},
    {"role": "user", "content": "bye"},
]  # fmt: skip


def test_unsigned_thinking_is_left_out_for_an_anthropic_model(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    body = {"model": ALIAS, "max_tokens": 2048, "messages": HISTORY,
            "thinking": {"type": "enabled", "budget_tokens": 1024}}  # fmt: skip
    answer = httpx.post(f"{fresh.server.base_url}/v1/messages", json=body,
                        headers={"x-api-key": key}, timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    sent = fresh.fake.requests[-1].body["messages"]
    assert sent == [
        HISTORY[0],
        {"role": "assistant", "content": [{"type": "text", "text": "Hello."}]},
        # a turn of unsigned thinking alone: gone, the user turns around it one (as Anthropic
        # combines consecutive turns)
        {"role": "user", "content": [text_block("think again"), text_block("and now?")]},
        HISTORY[5],
        HISTORY[6],
    ]


def test_the_same_history_still_reaches_an_openai_model(fresh: MessagesBox) -> None:
    """(The translation's own handling: see test_reasoning_roundtrip.py.)"""
    _, key = fresh.new_key()
    body = {"model": OPENAI_ALIAS, "max_tokens": 50, "messages": HISTORY}
    answer = httpx.post(f"{fresh.server.base_url}/v1/messages", json=body,
                        headers={"x-api-key": key}, timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text


def test_count_tokens_of_such_a_history_is_asked_without_them_too(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    body = {"model": ALIAS, "messages": HISTORY}
    answer = httpx.post(f"{fresh.server.base_url}/v1/messages/count_tokens", json=body,
                        headers={"x-api-key": key}, timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    sent = fresh.fake.requests[-1].body["messages"]
    assert not any(b.get("signature") == "" for m in sent if isinstance(m["content"], list)
                   for b in m["content"])  # fmt: skip
