"""One call through each inference route of the box with the real SDKs, and what the client
got: the answer's text and reasoning, and the usage and cost it was shown; plus the usage row
the box wrote for it (the truth of what was charged)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.fakes.compatible_wire import usage_answer
from tests.fakes.openai_upstream import Reply
from tests.quirks.conftest import MODEL
from tests.responses.conftest import ResponsesBox

PROMPT = "Say hello"
ROUTES = ("chat", "messages", "responses")


@dataclass
class Seen:
    """What the client of one call saw."""

    text: str = ""
    reasoning: str = ""
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cost_usd: Decimal | None = None  # chat and responses show it; messages does not
    extra: dict[str, Any] = field(default_factory=dict)


def call(box: ResponsesBox, key: str, route: str, *, stream: bool, **options: Any) -> Seen:
    """One call of MODEL by `route` ("chat", "messages" or "responses")."""
    runner = {"chat": _chat, "messages": _messages, "responses": _responses}[route]
    return runner(box, key, stream, **options)


def _chat(box: ResponsesBox, key: str, stream: bool, **options: Any) -> Seen:
    client = box.openai(key)
    messages = [{"role": "user", "content": PROMPT}]
    seen = Seen()
    if not stream:
        answer = client.chat.completions.create(model=MODEL, messages=messages, **options)
        message = answer.choices[0].message
        seen.text = message.content or ""
        seen.reasoning = (message.model_extra or {}).get("reasoning_content") or ""
        _chat_usage(seen, answer.usage)
        return seen
    usage = None
    for chunk in client.chat.completions.create(
        model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True},
        **options,
    ):  # fmt: skip
        for choice in chunk.choices:
            seen.text += choice.delta.content or ""
            extra = choice.delta.model_extra or {}
            seen.reasoning += extra.get("reasoning_content") or extra.get("reasoning") or ""
        usage = chunk.usage or usage
    _chat_usage(seen, usage)
    return seen


def _chat_usage(seen: Seen, usage: Any) -> None:
    if usage is None:
        return
    seen.input_tokens, seen.output_tokens = usage.prompt_tokens, usage.completion_tokens
    details = usage.prompt_tokens_details
    seen.cache_read_tokens = details.cached_tokens if details is not None else None
    seen.cost_usd = Decimal(str((usage.model_extra or {})["cost_usd"]))
    seen.extra = usage.model_extra or {}


def _messages(box: ResponsesBox, key: str, stream: bool, **options: Any) -> Seen:
    client = box.client(key)
    request = {"model": MODEL, "max_tokens": 1000,
               "messages": [{"role": "user", "content": PROMPT}], **options}  # fmt: skip
    if stream:
        with client.messages.stream(**request) as events:
            for _ in events:
                pass
            message = events.get_final_message()
    else:
        message = client.messages.create(**request)
    seen = Seen()
    for block in message.content:
        if block.type == "text":
            seen.text += block.text
        elif block.type == "thinking":
            seen.reasoning += block.thinking
    usage = message.usage
    cached = usage.cache_read_input_tokens or 0
    seen.input_tokens = usage.input_tokens + cached + (usage.cache_creation_input_tokens or 0)
    seen.output_tokens, seen.cache_read_tokens = usage.output_tokens, cached
    return seen


def _responses(box: ResponsesBox, key: str, stream: bool, **options: Any) -> Seen:
    client = box.openai(key)
    if stream:
        response = None
        for event in client.responses.create(model=MODEL, input=PROMPT, stream=True, **options):
            if event.type in ("response.completed", "response.incomplete"):
                response = event.response
        assert response is not None, "the stream never completed"
    else:
        response = client.responses.create(model=MODEL, input=PROMPT, **options)
    seen = Seen(text=response.output_text)
    for item in response.output:
        if item.type == "reasoning":
            seen.reasoning += "".join(part.text for part in item.content or [])
    usage = response.usage
    assert usage is not None
    seen.input_tokens, seen.output_tokens = usage.input_tokens, usage.output_tokens
    seen.cache_read_tokens = usage.input_tokens_details.cached_tokens
    seen.cost_usd = Decimal(str((usage.model_extra or {})["cost_usd"]))
    return seen


def only_row(box: ResponsesBox, email: str, wait: float = 10) -> dict[str, Any]:
    """The user's one usage row, once it is written and the hold released."""
    deadline = time.monotonic() + wait
    while True:
        rows = box.usage_rows(email)
        if rows and box.balance_nanos(email)[1] == 0:
            assert len(rows) == 1, rows
            return rows[0]
        assert time.monotonic() < deadline, f"{email}: no settled usage row"
        time.sleep(0.05)


def assert_free(box: ResponsesBox, email: str, start: int) -> None:
    """The user's one call failed and cost nothing: its row an error at 0, the balance
    `start` with nothing held."""
    row = only_row(box, email)
    assert (row["status"], row["cost_nanos"]) == ("error", 0), row
    assert box.balance_nanos(email) == (start, 0)


def chat_text_until_error(box: ResponsesBox, key: str, match: str, **options: Any) -> str:
    """The text a chat stream of MODEL relayed before it ended in an error saying `match`."""
    import openai
    import pytest

    texts: list[str] = []
    stream = box.openai(key).chat.completions.create(model=MODEL, stream=True, **options)
    with pytest.raises(openai.APIError, match=match):
        for piece in stream:
            texts += [choice.delta.content or "" for choice in piece.choices]
    return "".join(texts)


def failed_responses_stream(box: ResponsesBox, key: str, match: str) -> list[Any]:
    """The events of a Responses stream of MODEL that ended `response.failed` (never
    `response.completed`) with an error saying `match`."""
    events = list(box.openai(key).responses.create(model=MODEL, input="Hi", stream=True))
    kinds = [e.type for e in events]
    assert "response.completed" not in kinds and kinds[-1] == "response.failed", kinds
    assert match in events[-1].response.error.message
    return events


def push_usage_reply(box: ResponsesBox, stream: bool, events: list[bytes], text: str,
                     usage: dict[str, Any]) -> None:  # fmt: skip
    """The upstream's next answer: `events` (a stream carrying `usage`) when streamed, else an
    answer of `text` with `usage`."""
    if stream:
        box.openai_fake.push(Reply(raw=events))
    else:
        box.openai_fake.push(
            Reply(raw=[usage_answer(text, usage)], content_type="application/json")
        )
