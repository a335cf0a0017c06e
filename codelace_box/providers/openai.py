"""The `openai` provider kind: the Chat Completions API at any base URL (OpenAI, OpenRouter,
vLLM, Ollama, Groq, ...). The request passes through untouched except `model`, the output cap
the gateway reserved for (when the client set none, or as `max_tokens` to a compatible server
when the client set only `max_completion_tokens`), for streams a request for usage, and `store`
(the box keeps no conversation, on this route as on the others: see `_unstored`). Its stream
translator is openai_stream.py; the reading of a message's text and reasoning, chat_text.py.
"""

from __future__ import annotations

from typing import Any

from codelace_box.errors import UpstreamError
from codelace_box.providers.base import (
    JSON,
    ProviderAdapter,
    StreamTranslator,
    UpstreamRequest,
    UpstreamTarget,
    Usage,
)
from codelace_box.providers.openai_errors import (
    error_fields,
    error_message,
    raise_failed_finish,
    raise_reported_error,
    wants_payment,
)
from codelace_box.providers.openai_stream import OpenAIStreamTranslator
from codelace_box.providers.openai_usage import only_hour_caching, usage_from
from codelace_box.providers.stop_reasons import chat_choice
from codelace_box.providers.tally import output_tokens

OPENAI_BASE_URL = "https://api.openai.com/v1"
_NO_ANSWER = "the upstream answered without an answer"  # no choice with a message, no usage
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
