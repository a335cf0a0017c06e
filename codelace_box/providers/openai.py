"""The `openai` provider kind: the Chat Completions API at any base URL (OpenAI, OpenRouter,
vLLM, Ollama, Groq, ...). The request passes through untouched except `model`, the output cap
the gateway reserved for (when the client set none, or as `max_tokens` to a compatible server
when the client set only `max_completion_tokens`), for streams a request for usage, and `store`
(the box keeps no conversation, on this route as on the others: see `_unstored`).
"""

from __future__ import annotations

from typing import Any

from codelace_box.errors import UpstreamError
from codelace_box.jsonwire import NOT_JSON, loads
from codelace_box.providers.base import (
    JSON,
    ProviderAdapter,
    SSEEvent,
    StreamTranslator,
    UpstreamRequest,
    UpstreamStreamError,
    UpstreamTarget,
    Usage,
    is_blank,
    is_done,
)
from codelace_box.providers.call_keys import CanonicalCalls
from codelace_box.providers.openai_errors import (
    error_fields,
    error_message,
    error_text,
    failed_finish,
    raise_failed_finish,
    raise_reported_error,
    reported_error,
    wants_payment,
)
from codelace_box.providers.openai_usage import (
    chunk_usage,
    has_choice_usage,
    only_hour_caching,
    usage_from,
)
from codelace_box.providers.stop_reasons import chat_choice, chat_finish
from codelace_box.providers.tally import output_tokens

OPENAI_BASE_URL = "https://api.openai.com/v1"
_EMPTY = "the upstream ended the stream without an answer"  # [DONE] with nothing before it
_NO_ANSWER = "the upstream answered without an answer"  # no choice with a message, no usage
_INDEX_TYPES = (int, str)  # (`int | str` in a call builds a union object each time: 3x the cost)
REASONING_CONTENT = "reasoning_content"  # a model's own reasoning, handed back in messages
CAP_REFUSED = "max_tokens"  # in UpstreamTarget.refused_fields: the cap goes in the other field


def _has_message(choice: Any) -> bool:
    """Whether an unstreamed choice carries a message (`choices: []`, a null choice, one
    without a message or with `"message": null` carry none: with no usage, no answer)."""
    return isinstance(choice, dict) and isinstance(choice.get("message"), dict)


def cap_field(base_url: str, refused: frozenset[str] = frozenset()) -> str:
    """The output cap OpenAI itself requires (reasoning models refuse `max_tokens`), and so an
    upstream that `refused` max_tokens (Azure's reasoning models, a proxy in front of OpenAI:
    gateway/refused_output.py); the compatible servers (vLLM, Ollama, OpenRouter, ...) all
    take `max_tokens`."""
    if "api.openai.com" in base_url or CAP_REFUSED in refused:
        return "max_completion_tokens"
    return "max_tokens"


def upstream_base(target: UpstreamTarget) -> str:
    """The upstream's base URL without a trailing slash (OpenAI's own when none is set)."""
    return (target.base_url or OPENAI_BASE_URL).rstrip("/")


def json_post(url: str, api_key: str, payload: JSON, *, stream: bool) -> UpstreamRequest:
    """A POST of `payload` to an OpenAI-style upstream: the key as a bearer token, the answer
    as SSE when streamed, and never compressed (the box reads what it relays)."""
    headers = {
        "authorization": f"Bearer {api_key}",
        "content-type": "application/json",
        "accept": "text/event-stream" if stream else "application/json",
        "accept-encoding": "identity",
    }
    return UpstreamRequest(url, headers, payload)


def reasoning_text(message: JSON) -> str:
    """The reasoning a chat message or delta carries (`reasoning_content`, or `reasoning`, or
    the thinking chunks of a content list)."""
    return _reasoning_field(message) or "".join(_chunk_texts(message.get("content"), "thinking"))


def _reasoning_field(message: JSON) -> str:
    """The reasoning of a message's `reasoning_content` or `reasoning` field ("" if none)."""
    for name in ("reasoning_content", "reasoning"):
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def content_text(message: JSON) -> str:
    """The answer text of a chat message or delta: its `content` string, or the text chunks of
    a content list. Mistral's reasoning models (Magistral) answer with a list of typed chunks,
    `{"type": "thinking", "thinking": [{"type": "text", "text": ...}]}` and
    `{"type": "text", "text": ...}`, in stream deltas too."""
    content = message.get("content")
    return content if isinstance(content, str) else "".join(_chunk_texts(content, "text"))


def _chunk_texts(content: Any, kind: str) -> list[str]:
    """The texts of a content list's chunks of one type (a thinking chunk holds text chunks)."""
    texts: list[str] = []
    for chunk in content if isinstance(content, list) else ():
        if not isinstance(chunk, dict) or chunk.get("type") != kind:
            continue
        inner = chunk.get(kind)
        if isinstance(inner, str):
            texts.append(inner)
        elif isinstance(inner, list):
            texts += _chunk_texts(inner, "text")
    return texts


def _send_cap(payload: JSON, field: str, reserved: int) -> None:
    """Make sure the upstream sees the output cap reserved for, in the field it reads: when the
    client set none, the reserved one; a compatible server (Ollama, LM Studio) reads only
    `max_tokens` and ignores `max_completion_tokens`, so it gets `max_tokens` whenever the client
    set only the other (the reservation is the larger of the two, so it is that one)."""
    if payload.get("max_tokens") is None and payload.get("max_completion_tokens") is None:
        payload[field] = reserved
    elif field == "max_tokens" and payload.get("max_tokens") is None:
        payload["max_tokens"] = reserved


def _unstored(payload: JSON, base: str) -> None:
    """No stored completion: `store: true` would keep the user's conversation among the
    operator's stored completions (in the operator's dashboard, evals and distillation), which
    no user can read back through the box. `store` is left out (a compatible server may refuse
    the field), and said false to OpenAI itself; `metadata`, which OpenAI takes only for a
    stored completion, goes with a `store: true`."""
    if payload.pop("store", None):
        payload.pop("metadata", None)
    if "api.openai.com" in base:
        payload["store"] = False


def _delta_chars(delta: JSON) -> int:
    content = delta.get("content")  # the reasoning once, however many fields repeat it (vLLM's)
    if isinstance(content, str):  # (no content list: no thinking chunks to look for)
        total = len(content)
        if "reasoning_content" in delta or "reasoning" in delta:  # (most deltas: neither)
            total += len(_reasoning_field(delta))
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


def without_message_field(messages: Any, name: str) -> Any:
    """The messages without a field of their own (`reasoning_content`, which a server that does
    not take it refuses: Mistral's 422 "extra_forbidden")."""
    if not isinstance(messages, list):
        return messages
    return [{k: v for k, v in m.items() if k != name} if isinstance(m, dict) else m
            for m in messages]  # fmt: skip


def _without_signatures(message: Any) -> Any:
    """A message without Gemini's thought signatures on its tool calls (`extra_content`, which
    a thread begun on Gemini hands back; OpenAI does not take it)."""
    calls = message.get("tool_calls") if isinstance(message, dict) else None
    if not isinstance(calls, list):
        return message
    kept = [{k: v for k, v in c.items() if k != "extra_content"} if isinstance(c, dict) else c
            for c in calls]  # fmt: skip
    return {**message, "tool_calls": kept}


class OpenAIAdapter(ProviderAdapter):
    """Chat Completions in, Chat Completions out; a finish_reason in OpenAI's words, unless
    `upstream_finish` (for the Messages route's translation, which reads the upstream's own)."""

    kind = "openai"
    default_base_url = OPENAI_BASE_URL

    def __init__(self, upstream_finish: bool = False) -> None:
        self.upstream_finish = upstream_finish

    def key_check_request(self, base_url: str, api_key: str) -> tuple[str, dict[str, str]]:
        """GET {base}/models; on OpenRouter, whose model list is public, GET {base}/key."""
        base = base_url.rstrip("/")
        path = "/key" if "openrouter.ai" in base else "/models"
        return f"{base}{path}", {"authorization": f"Bearer {api_key}"}

    def build_request(self, body: JSON, target: UpstreamTarget) -> UpstreamRequest:
        base = upstream_base(target)
        payload = dict(body)
        payload["model"] = target.upstream_model
        if target.stream:
            payload["stream"] = True
            options = payload.get("stream_options")  # the client's own go as they are
            if target.stream_usage or options is not None:
                options = dict(options) if isinstance(options, dict) else {}
                payload["stream_options"] = options | {"include_usage": True}
        else:
            payload.pop("stream_options", None)
        if target.default_max_tokens is not None:
            _send_cap(payload, cap_field(base, target.refused_fields), target.default_max_tokens)
        _unstored(payload, base)
        if "api.openai.com" in base and isinstance(payload.get("messages"), list):
            payload["messages"] = [_without_signatures(m) for m in payload["messages"]]
        return json_post(f"{base}/chat/completions", target.api_key, payload, stream=target.stream)

    def without_hints(self, body: JSON, names: set[str]) -> JSON:
        """Without these hints, the reasoning handed back in messages among them."""
        kept = super().without_hints(body, names)
        if REASONING_CONTENT in names:
            kept["messages"] = without_message_field(kept.get("messages"), REASONING_CONTENT)
        return kept

    def hour_writes(self, body: JSON) -> bool:
        """OpenRouter reports its cache writes unsplit; the body goes up as it is: they are all
        1-hour ones when every cache_control it holds asks ttl "1h"."""
        return only_hour_caching(body)

    def parse_response(self, payload: JSON, public_model: str) -> tuple[JSON, Usage]:
        raise_reported_error(payload)  # with choices or none, as a stream's error chunk
        choices = payload.get("choices")
        if not isinstance(choices, list):
            raise UpstreamError("the upstream answered without choices", code="bad_upstream_reply")
        raise_failed_finish(choices)  # (a choice's finish_reason "error": openai_errors.py)
        payload["model"] = public_model
        usage = usage_from(payload.get("usage"))
        if usage is None and not any(_has_message(c) for c in choices):  # nothing made,
            raise UpstreamError(_NO_ANSWER, code="bad_upstream_reply")  # nothing counted
        if usage is None:
            produced = (output_tokens(c.get("message")) for c in choices if isinstance(c, dict))
            usage = Usage(0, sum(produced), estimated=True)
        for choice in choices:
            if isinstance(choice, dict):
                chat_choice(choice, self.upstream_finish)
        return payload, usage

    def usage_of(self, raw: Any) -> Usage | None:
        return usage_from(raw)

    def error_message(self, status: int, payload: bytes) -> str:
        return error_message(status, payload)

    def error_fields(self, payload: bytes) -> tuple[str | None, str | None]:
        return error_fields(payload)

    def wants_payment(self, status: int, message: str) -> bool:
        return wants_payment(status, message)

    def stream_translator(self, public_model: str) -> StreamTranslator:
        return OpenAIStreamTranslator(public_model, self.upstream_finish)
