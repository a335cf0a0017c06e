"""The `anthropic` provider kind: the OpenAI chat format to Anthropic's Messages API and back.

Pure translation (no vendor SDK): requests in anthropic_request, answers and usage in
anthropic_response, streams in anthropic_stream. This module is the adapter the gateway uses,
plus the checks for OpenAI fields that Anthropic cannot honour (a clear 400, never silence).
"""

from __future__ import annotations

import re
from typing import Any

from codelace_box.errors import InvalidRequest
from codelace_box.providers.anthropic_fields import check_fields
from codelace_box.providers.anthropic_output import fit_output_fields
from codelace_box.providers.anthropic_request import (
    takes_both_samplers,
    takes_sampling,
    translate_request,
)
from codelace_box.providers.anthropic_response import error_message, translate_response
from codelace_box.providers.anthropic_response import usage_from as anthropic_usage
from codelace_box.providers.anthropic_stream import AnthropicStreamTranslator
from codelace_box.providers.anthropic_thinking import (
    REPLY_DEFAULT,
    add_display_beta,
    reply_shape,
    thinking_field,
)
from codelace_box.providers.base import (
    JSON,
    ProviderAdapter,
    StreamTranslator,
    UpstreamRequest,
    UpstreamTarget,
    Usage,
)

ANTHROPIC_VERSION = "2023-06-01"

# The start of Anthropic's 400 message when the operator's account has no credit left.
OUT_OF_CREDIT = "Your credit balance is too low"
# Anthropic's spend limits (its errors page): one the operator set on the organization or a
# workspace (a 400: "You have reached your specified [workspace] API usage limits"), and the
# usage tier's monthly cap (a 429 rate_limit_error without retry-after, "You have reached your
# API usage limits: ..."). Access returns at a date, not in a second: the account cannot pay.
_SPEND_LIMIT_RE = re.compile(
    r"You have reached your (?:specified )?(?:workspace )?API usage limits"
)
# OpenRouter's 403 for a key past the credit limit set on it (its Messages endpoint too): the
# key wants paying (or its period's reset), not refused, so it is neither probed nor parked
_KEY_LIMIT_RE = re.compile(r"\bKey limit (?:exceeded|reached)\b")
# Anthropic's 400s for a prompt (or prompt plus max_tokens) past the context window.
_CONTEXT_OVERFLOW_RE = re.compile(r"prompt is too long|exceed context limit", re.IGNORECASE)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_unsupported(body: JSON) -> None:
    """Fields with no Anthropic counterpart, when set to something other than their no-op."""
    if body.get("n") not in (None, 1):
        raise InvalidRequest("n > 1 is not supported by Anthropic models", param="n")
    if body.get("logprobs") or body.get("top_logprobs") not in (None, 0):  # 0 asks for none
        raise InvalidRequest("logprobs are not available from Anthropic models", param="logprobs")
    for name in ("presence_penalty", "frequency_penalty"):
        if body.get(name) not in (None, 0, 0.0):
            raise InvalidRequest(f"{name} is not supported by Anthropic models", param=name)
    if body.get("logit_bias"):
        raise InvalidRequest("logit_bias is not supported by Anthropic models", param="logit_bias")
    for name in ("functions", "function_call"):
        if body.get(name):
            raise InvalidRequest(f"{name} is deprecated: send tools and tool_choice", param=name)
    if body.get("web_search_options") is not None:
        raise InvalidRequest(
            "web_search_options is not supported for Anthropic models", param="web_search_options"
        )
    modalities = body.get("modalities")
    if body.get("audio") or (isinstance(modalities, list) and "audio" in modalities):
        raise InvalidRequest("audio output is not supported by Anthropic models", param="audio")


def _check_sampling(body: JSON, upstream_model: str) -> None:
    temperature = body.get("temperature")
    if temperature is not None and (not _is_number(temperature) or not 0 <= temperature <= 1):
        raise InvalidRequest(
            "temperature must be between 0 and 1 for Anthropic models", param="temperature"
        )
    top_p = body.get("top_p")
    if top_p is not None and (not _is_number(top_p) or not 0 <= top_p <= 1):
        raise InvalidRequest("top_p must be between 0 and 1", param="top_p")
    pair = temperature is not None and top_p is not None and top_p < 1
    if pair and not takes_both_samplers(upstream_model):
        raise InvalidRequest(
            "Claude Opus 4.1 and later take only one of temperature and top_p (top_p 1 is ignored)",
            param="top_p",
        )


def _check_reasoning(body: JSON, upstream_model: str) -> None:
    """Extended thinking excludes custom temperature, low top_p, top_k (on models that take them
    at all) and forced tool use."""
    field = thinking_field(body)
    if field is None:
        return
    sampling = takes_sampling(upstream_model)
    if sampling and body.get("temperature") not in (None, 1, 1.0):
        raise InvalidRequest(
            f"{field} cannot be combined with a temperature other than 1 on Anthropic models",
            param="temperature",
        )
    top_p = body.get("top_p")
    if sampling and top_p is not None and top_p < 0.95:
        raise InvalidRequest(
            f"{field} needs top_p of at least 0.95 on Anthropic models", param="top_p"
        )
    if sampling and body.get("top_k"):
        raise InvalidRequest(
            f"{field} cannot be combined with top_k on Anthropic models", param="top_k"
        )
    if _forces_tool(body.get("tool_choice")):
        raise InvalidRequest(
            f"{field} cannot be combined with tool_choice required or a named "
            "function on Anthropic models",
            param="tool_choice",
        )


def _forces_tool(choice: Any) -> bool:
    """Whether a tool_choice forces tool use: required, a named function, or allowed_tools
    in mode required (auto over the allowed tools does not)."""
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        spec = choice.get("allowed_tools")
        return not isinstance(spec, dict) or spec.get("mode") != "auto"
    return choice == "required" or isinstance(choice, dict)


class AnthropicAdapter(ProviderAdapter):
    """Anthropic Messages API (`POST {base_url}/v1/messages`, `x-api-key` auth)."""

    kind = "anthropic"
    default_base_url = "https://api.anthropic.com"

    def __init__(self, reply: str = REPLY_DEFAULT) -> None:
        self.reply = reply  # how answers show the thinking (anthropic_thinking.REPLY_*)

    def for_call(self, body: JSON) -> AnthropicAdapter:
        """An adapter whose answers show the thinking as this body asks (OpenRouter's
        `reasoning`: as `reasoning` too, or not at all with `exclude`)."""
        shape = reply_shape(body)
        return self if shape == self.reply else AnthropicAdapter(shape)

    def key_check_request(self, base_url: str, api_key: str) -> tuple[str, dict[str, str]]:
        """GET {base}/v1/models with the key and the API version."""
        headers = {"x-api-key": api_key, "anthropic-version": ANTHROPIC_VERSION}
        return f"{base_url.rstrip('/')}/v1/models", headers

    def check_request(
        self, body: JSON, upstream_model: str = "", *, default_max_tokens: int | None = None
    ) -> None:
        """400 for what Anthropic cannot honour, before any money is held or byte is sent
        (a thinking budget checked against the max_tokens the call will be sent with)."""
        check_fields(body)
        _check_unsupported(body)
        if takes_sampling(upstream_model):
            _check_sampling(body, upstream_model)
        _check_reasoning(body, upstream_model)
        translate_request(
            body,
            upstream_model=upstream_model,
            stream=False,
            default_max_tokens=default_max_tokens,
        )

    def build_request(self, body: JSON, target: UpstreamTarget) -> UpstreamRequest:
        """The Messages API request for an OpenAI chat completions body."""
        payload = translate_request(
            body,
            upstream_model=target.upstream_model,
            stream=target.stream,
            default_max_tokens=target.default_max_tokens,
        )
        headers = {
            "x-api-key": target.api_key,
            "anthropic-version": ANTHROPIC_VERSION,
            "content-type": "application/json",
        }
        payload = fit_output_fields(payload, headers, target.refused_fields)
        add_display_beta(payload, headers)
        base = (target.base_url or self.default_base_url).rstrip("/")
        return UpstreamRequest(url=f"{base}/v1/messages", headers=headers, json_body=payload)

    def parse_response(self, payload: JSON, public_model: str) -> tuple[JSON, Usage]:
        """The OpenAI `chat.completion` for an Anthropic `message`."""
        return translate_response(payload, public_model, self.reply)

    def usage_of(self, raw: Any) -> Usage | None:
        """Usage from a Messages API usage object (its counts, cache reads and writes)."""
        return anthropic_usage(raw) if isinstance(raw, dict) and "output_tokens" in raw else None

    def error_message(self, status: int, payload: bytes) -> str:
        """Anthropic's error message from an error body."""
        return error_message(status, payload)

    def error_code(self, status: int, message: str) -> tuple[str, str] | None:
        """context_length_exceeded (on messages) for Anthropic's context-window 400s."""
        if status == 400 and _CONTEXT_OVERFLOW_RE.search(message):
            return "context_length_exceeded", "messages"
        return None

    def wants_payment(self, status: int, message: str) -> bool:
        """402 billing_error, the 400 Anthropic sends when the account's credit ran out, a
        spend limit reached (a 400 or a 429), or OpenRouter's 403 for a key past its own."""
        if status == 402 or (status == 400 and OUT_OF_CREDIT in message):
            return True
        if status == 403:
            return _KEY_LIMIT_RE.search(message) is not None
        return status in (400, 429) and _SPEND_LIMIT_RE.search(message) is not None

    def stream_translator(self, public_model: str) -> StreamTranslator:
        """A translator for one Anthropic stream."""
        return AnthropicStreamTranslator(public_model, self.reply)
