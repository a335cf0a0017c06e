"""The `openai` kind's stream translator: relays Chat Completions chunks with the box's model
id, counts their output, puts tool call pieces in OpenAI's shape and keeps the usage chunk for
the gateway."""

from __future__ import annotations

from typing import Any

from codelace_box.jsonwire import NOT_JSON, loads
from codelace_box.providers.base import (
    JSON,
    SSEEvent,
    StreamTranslator,
    UpstreamStreamError,
    is_blank,
    is_done,
)
from codelace_box.providers.call_keys import CanonicalCalls
from codelace_box.providers.chat_text import content_text, reasoning_field, reasoning_text
from codelace_box.providers.openai_errors import error_text, failed_finish, reported_error
from codelace_box.providers.openai_usage import chunk_usage, has_choice_usage, usage_from
from codelace_box.providers.stop_reasons import chat_finish

_EMPTY = "the upstream ended the stream without an answer"  # [DONE] with nothing before it
_INDEX_TYPES = (int, str)  # (`int | str` in a call builds a union object each time: 3x the cost)


def _delta_chars(delta: JSON) -> int:
    content = delta.get("content")  # the reasoning once, however many fields repeat it (vLLM's)
    if isinstance(content, str):  # (no content list: no thinking chunks to look for)
        total = len(content)
        if "reasoning_content" in delta or "reasoning" in delta:  # (most deltas: neither)
            total += len(reasoning_field(delta))
    else:
        total = len(content_text(delta)) + len(reasoning_text(delta))
    refusal = delta.get("refusal")
    if isinstance(refusal, str):
        total += len(refusal)
    return total


def _call_chars(calls: list[Any]) -> int:
    total = 0
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            for part in ("name", "arguments"):
                if isinstance(function.get(part), str):
                    total += len(function[part])
    return total


def _unparsed(event: SSEEvent) -> list[JSON]:
    """No chunks for an event of empty data (it carries nothing: base.py is_blank); any other
    data that is no JSON is a broken upstream (an `event: error` of empty data too)."""
    if is_blank(event):
        return []
    raise UpstreamStreamError("the upstream sent a malformed stream event") from None


class OpenAIStreamTranslator(StreamTranslator):
    """Relays OpenAI chunks with our model id, a finish_reason in OpenAI's words unless
    `upstream_finish` (the Messages route reads the upstream's own); keeps the usage chunk for
    the gateway."""

    def __init__(self, public_model: str, upstream_finish: bool = False) -> None:
        super().__init__()
        self.public_model = public_model
        self.upstream_finish = upstream_finish
        self._open: set[Any] = set()  # choice indexes that have not sent a finish_reason yet
        self._closed: set[Any] = set()  # choice indexes that have
        self._canonical: CanonicalCalls | None = None  # made at the first tool call piece
        self._usage_alone = False  # the last usage came on a chunk of its own (no choices)

    def feed(self, event: SSEEvent) -> list[JSON]:
        data = event.data
        if is_done(data):
            return self._done()
        try:
            chunk = loads(data)
        except NOT_JSON:
            return _unparsed(event)
        if not isinstance(chunk, dict):
            raise UpstreamStreamError("the upstream sent a malformed stream event")
        if chunk.get("error") or chunk.get("object") == "error" or event.event == "error":
            error = reported_error(chunk) or chunk  # (an `error` event's data: the error itself)
            raise UpstreamStreamError(error_text(error), "upstream_error")
        raw_usage = chunk.get("usage")  # (chunk_usage's look, without its call for most chunks)
        if raw_usage is None and ("x_groq" in chunk or has_choice_usage(chunk)):
            raw_usage = chunk_usage(chunk)
        if raw_usage is not None:  # (most chunks carry none: two calls fewer)
            self._saw(raw_usage)
            usage = usage_from(raw_usage)
            if usage is not None:
                self.usage, self._usage_alone = usage, not chunk.get("choices")
        choices = chunk.get("choices")
        if not choices:  # a usage chunk (even an unusable one) is the gateway's to send
            return [] if isinstance(raw_usage, dict) else [self._relabel(chunk)]
        if chunk.get("usage") is not None:  # usage riding on a content chunk (vLLM, DeepSeek):
            chunk["usage"] = None  # the client gets the gateway's usage chunk, with its price
        for choice in choices:
            if isinstance(choice, dict):
                self._choice(choice)
        return [self._relabel(chunk)]

    def _done(self) -> list[JSON]:
        """`[DONE]`: the stream is complete, unless nothing came before it (no output, no
        finish_reason, no usage: a router whose account failed): that is no answer, a failure."""
        if not self._closed and self.usage is None and not self.output_chars:
            raise UpstreamStreamError(_EMPTY)
        self.finished = True
        return []

    def _choice(self, choice: JSON) -> None:
        """A choice's delta counted (its tool call pieces put in OpenAI's shape), its finish
        tracked (one call per choice: the hot path)."""
        index, finish = choice.get("index", 0), choice.get("finish_reason")
        delta = choice.get("delta")
        if isinstance(delta, dict):
            self.output_chars += _delta_chars(delta)
            if calls := delta.get("tool_calls"):  # (a text chunk does no more)
                self._calls(index, delta, calls)
        else:  # `"delta": null` (Azure's finish chunk) or none: the SDK's choice.delta is None
            choice["delta"] = {}
        if finish and (failure := failed_finish(choice)) is not None:
            raise UpstreamStreamError(failure)  # as a top-level error chunk: a failure, free
        if finish and not self.upstream_finish:
            chat_finish(choice)
        if not isinstance(index, _INDEX_TYPES):
            return
        if finish:
            self._open.discard(index)
            self._closed.add(index)
        elif index not in self._closed:
            self._open.add(index)

    def _calls(self, choice: Any, delta: JSON, calls: Any) -> None:
        """Tool call pieces counted, and put in OpenAI's shape (providers/call_keys.py): a
        compatible server's repeated ids and names, missing or shared indexes break the
        clients that gather pieces by index (the openai SDK's stream helper)."""
        if not isinstance(calls, list):
            return
        self.output_chars += _call_chars(calls)
        if self._canonical is None:
            self._canonical = CanonicalCalls()
        index = choice if isinstance(choice, _INDEX_TYPES) else 0
        delta["tool_calls"] = self._canonical.rewrite(index, calls)

    def _saw(self, raw: Any) -> None:
        """Remember the counts of any usage object, even a partial or running one."""
        if not isinstance(raw, dict):
            return
        details = raw.get("completion_tokens_details")
        reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else None
        for seen in (raw.get("completion_tokens"), reasoning):
            if isinstance(seen, int) and not isinstance(seen, bool):
                self.output_tokens_seen = max(self.output_tokens_seen, seen)
        prompt = raw.get("prompt_tokens")
        if isinstance(prompt, int) and not isinstance(prompt, bool):
            self.input_tokens_seen = max(self.input_tokens_seen, prompt)

    def finish(self) -> list[JSON]:
        """A stream that ends cleanly without `[DONE]` (and without usage) after every choice
        sent its finish_reason is complete: some compatible servers omit the sentinel."""
        if self._closed and not self._open:
            self.finished = True
        return []

    def counted_whole(self) -> bool:
        """Usage, and no choice still open: usage riding on each content chunk (vLLM with
        `continuous_usage_stats`) is a running count until every choice has finished; usage
        in a chunk of its own (no choices) is the final count, finish_reason or not."""
        return self.usage is not None and (self._usage_alone or not self._open)

    def _relabel(self, chunk: JSON) -> JSON:
        chunk["model"] = self.public_model
        return chunk
