"""Native Responses API upstreams (providers added with `--responses-api`): usage and relabelling.

For these the request goes upstream as is (after the same checks, with `model` and `store:
false` set) and the answer comes back in the Responses shape already. What the box still does:
put its own model id in the response objects, bill on the upstream's `usage` (input_tokens,
output_tokens, cached/reasoning details) and add `cost_usd` to the final usage after settlement.
In a stream the terminal `response.completed` / `response.incomplete` event is held back for
that (the gateway sends it with `final_events`, as it sends its own usage chunk for chat), and
a `response.failed` or `error` event ends the stream as an UpstreamStreamError.
"""

from __future__ import annotations

from typing import Any

from codelace_box.errors import UpstreamError
from codelace_box.jsonwire import NOT_JSON, loads
from codelace_box.providers.base import (
    SSEEvent,
    StreamTranslator,
    UpstreamStreamError,
    Usage,
    is_blank,
)
from codelace_box.providers.openai_usage import set_cache_tokens
from codelace_box.providers.responses_compaction import for_native, without_foreign
from codelace_box.providers.responses_input import CHAT_REASONING_PREFIX, THINKING_PREFIXES
from codelace_box.providers.responses_request import translate_request
from codelace_box.providers.responses_response import responses_usage
from codelace_box.providers.responses_tools import ADDITIONAL_TOOLS, without_hosted
from codelace_box.providers.tally import output_tokens
from codelace_box.providers.thought_signature import split_id

JSON = dict[str, Any]

LIFECYCLE = (
    "response.created",
    "response.queued",
    "response.in_progress",
    "response.completed",
    "response.incomplete",
    "response.failed",
)
TERMINAL = ("response.completed", "response.incomplete")
_DELTA_TYPES = (
    "response.output_text.delta",
    "response.refusal.delta",
    "response.reasoning_text.delta",
    "response.reasoning_summary_text.delta",
    "response.function_call_arguments.delta",
    "response.custom_tool_call_input.delta",
)
_CALL_ITEMS = (
    "function_call",
    "custom_tool_call",
    "function_call_output",
    "custom_tool_call_output",
)


def _count(data: Any, name: str) -> int:
    value = data.get(name) if isinstance(data, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def native_usage(raw: Any) -> Usage | None:
    """Our Usage (details in the chat shape) from a Responses `usage`; None when unusable. All
    zeros is no count, as a chat usage's (no call has an empty input): a server that keeps none
    reports so after its answer; an input count of zero is none either (estimated: the box
    counts the input, ChatCall.with_input)."""
    if not isinstance(raw, dict):
        return None
    if type(raw.get("input_tokens")) is not int or type(raw.get("output_tokens")) is not int:
        return None  # (a bool is no count)
    if raw["input_tokens"] <= 0 and raw["output_tokens"] <= 0:
        return None
    inputs, outputs = raw.get("input_tokens_details"), raw.get("output_tokens_details")
    details: JSON = {
        "prompt_tokens_details": {
            "cached_tokens": _count(inputs, "cached_tokens"),
            "cache_write_tokens": _count(inputs, "cache_write_tokens"),
        },
        "completion_tokens_details": {"reasoning_tokens": _count(outputs, "reasoning_tokens")},
    }
    usage = Usage(max(raw["input_tokens"], 0), max(raw["output_tokens"], 0), details)
    usage.estimated = raw["input_tokens"] <= 0  # no input count (Ollama's for a cached prompt)
    set_cache_tokens(usage, inputs)  # cache reads and writes at their prices, as chat's
    return usage


def native_body(body: JSON, *, upstream_model: str, stream: bool) -> JSON:
    """The body for a native upstream: checked exactly as a translated one (the same 400s),
    then passed on with the upstream's model, `store: false`, no hosted tools (which would
    bill beyond the token prices) and none of the box's own reasoning items nor any by id
    alone (`_dropped_reasoning`), and calls under their own ids (`_unsigned`); `include` and
    the cache hints go along, since reasoning handed back statelessly needs
    `reasoning.encrypted_content`."""
    translate_request(without_foreign(body))  # an upstream's own compaction is for it to read
    payload = dict(body)
    if isinstance(body.get("input"), list):
        # the box's compaction item: its summary (for_native); calls: their own ids
        items = [_unsigned(for_native(item)) for item in body["input"]]
        payload["input"] = [item for item in items if not _dropped_reasoning(item)]
    payload["model"] = upstream_model
    payload["store"] = False
    payload["stream"] = stream
    if isinstance(body.get("tools"), list):
        payload["tools"] = without_hosted(body["tools"])
    return payload


def _unsigned(item: Any) -> Any:
    """A call or its output under the call's own id: a Gemini thought signature the box put on
    its call_id (thought_signature.py) is for Gemini alone, and OpenAI's Responses API refuses
    a call_id over 64 characters, so a thread carried on from Gemini failed on every turn.
    And an `additional_tools` item (Codex's code mode) without the hosted tools the box drops
    from `tools` (the same look at the type: no other pass over the input)."""
    kind = item.get("type") if isinstance(item, dict) else None
    if kind == ADDITIONAL_TOOLS:  # (checked a list: translate_request)
        return {**item, "tools": without_hosted(item["tools"])}
    if kind not in _CALL_ITEMS:
        return item
    call_id = item.get("call_id")
    if not isinstance(call_id, str):
        return item
    own, signature = split_id(call_id)
    return item if signature is None else {**item, "call_id": own}


def _dropped_reasoning(item: Any) -> bool:
    """A reasoning item handed back whose `encrypted_content` the box made of a provider's signed
    thinking (responses_input): no Responses upstream can read it (OpenAI refuses the whole
    request, 400 invalid_encrypted_content), so a thread that moves to a native model drops it;
    likewise one the box made of a chat model's reasoning_content (its id, CHAT_REASONING_PREFIX:
    OpenAI, storing nothing, would look that id up and refuse the request); and one without
    its `encrypted_content`, an id alone, which OpenAI looks up among the responses stored on
    the account, the operator's (a translation drops it as well)."""
    if not isinstance(item, dict) or item.get("type") != "reasoning":
        return False
    sealed, item_id = item.get("encrypted_content"), item.get("id")
    if not isinstance(sealed, str) or not sealed:
        return True
    if isinstance(item_id, str) and item_id.startswith(CHAT_REASONING_PREFIX):
        return True
    return sealed.startswith(THINKING_PREFIXES)


def parse_native_response(payload: JSON, public_model: str) -> tuple[JSON, Usage]:
    """A non-streamed native answer relabelled with our model id, and its usage."""
    error = payload.get("error")
    if payload.get("status") == "failed" or (isinstance(error, dict) and "object" not in payload):
        message = _message(error)  # a failed response, or an error body sent with a 200
        raise UpstreamError(f"the upstream failed: {message}", code="upstream_error")
    if payload.get("object") != "response" or not isinstance(payload.get("output"), list):
        raise UpstreamError("the upstream answered without a response", code="bad_upstream_reply")
    payload["model"] = public_model
    usage = native_usage(payload.get("usage"))
    if usage is None:  # the work was done all the same: its output counted, the input estimated
        usage = Usage(0, output_tokens(payload["output"]), estimated=True)
    payload["usage"] = responses_usage(usage)  # every detail count present, as SDKs require
    return payload, usage


class NativeResponsesStream(StreamTranslator):
    """Relays a native Responses stream event by event (as dicts), relabelled; keeps usage."""

    def __init__(self, public_model: str) -> None:
        super().__init__()
        self.public_model = public_model
        self.terminal: JSON | None = None  # the held-back response.completed / .incomplete
        self.last_sequence = -1
        self.response_id = ""

    def feed(self, event: SSEEvent) -> list[JSON]:
        """The event to relay (none for the held-back terminal event)."""
        try:
            data = loads(event.data)
        except NOT_JSON:
            if is_blank(event):  # an event of empty data carries nothing: skipped
                return []
            raise UpstreamStreamError("the upstream sent a malformed stream event") from None
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise UpstreamStreamError("the upstream sent a malformed stream event")
        kind = data["type"]
        if kind == "error":
            raise UpstreamStreamError(_message(data), _code(data))
        if isinstance(data.get("sequence_number"), int):
            self.last_sequence = data["sequence_number"]
        if kind in LIFECYCLE:
            return self._lifecycle(kind, data)
        if kind in _DELTA_TYPES:
            if isinstance(data.get("delta"), str):
                self.output_chars += len(data["delta"])
        elif not kind.isprintable():  # no API's: its line end (or half a surrogate pair)
            return []  # would break the client's `event:` line, or the stream
        return [data]

    def _lifecycle(self, kind: str, data: JSON) -> list[JSON]:
        response = data.get("response")
        if not isinstance(response, dict):
            raise UpstreamStreamError("the upstream sent a lifecycle event without its response")
        response["model"] = self.public_model
        self.response_id = str(response.get("id") or self.response_id)
        if kind == "response.failed":
            error = response.get("error")
            raise UpstreamStreamError(_message(error), _code(error))
        if kind in TERMINAL:
            self.usage = native_usage(response.get("usage"))
            self.terminal = data
            self.finished = True
            return []
        return [data]

    def final_events(self, usage_extra: JSON | None = None) -> list[JSON]:
        """The held-back terminal event, its usage in full (every detail count, as SDKs and
        Codex require) plus `usage_extra` (cost_usd)."""
        if self.terminal is None:
            return []
        if self.usage is not None:
            self.terminal["response"]["usage"] = responses_usage(self.usage, usage_extra)
        return [self.terminal]


def _message(error: Any) -> str:
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return "the upstream reported an error"


def _code(error: Any) -> str:
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        return error["code"]
    return "upstream_error"
