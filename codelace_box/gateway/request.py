"""A chat completion request, checked and priced before anything is reserved or sent.

`prepare_call` validates the body (400 for wrong types, with the offending `param`), routes
the model (404/503), refuses the billed fields the provider does not allow (billed_fields.py),
lets the provider adapter refuse what it cannot honour, and works out the
output cap and the worst-case cost that admission will hold.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from codelace_box.errors import CodelaceError, InvalidRequest
from codelace_box.gateway.admission import Asked
from codelace_box.gateway.advisor import advisor_tools
from codelace_box.gateway.extra_samplings import compaction_nanos
from codelace_box.gateway.metering import (
    DEFAULT_MAX_OUTPUT_TOKENS,
    input_token_bound,
    input_token_estimate,
    output_token_bound,
)
from codelace_box.gateway.routing import ModelRoute, RouteTable
from codelace_box.jsonwire import dumps
from codelace_box.money import token_cost_nanos
from codelace_box.providers import adapter_for
from codelace_box.providers.base import JSON, ProviderAdapter, Usage
from codelace_box.providers.billed_fields import check_billed_fields
from codelace_box.providers.file_refs import (
    FILE_REFERENCES,
    refuse_file_reference,
    refuse_local_url,
)
from codelace_box.providers.reasoning_details import reasoning_shown
from codelace_box.providers.tally import CHARS_PER_TOKEN, input_estimate, request_media

CHAT_ROUTE = "/v1/chat/completions"
MESSAGES_ROUTE = "/v1/messages"  # gateway/messages.py's ingress (its bodies are Anthropic's)
RESPONSES_ROUTE = "/v1/responses"  # gateway/responses.py's (and /v1/responses/compact)
EMBEDDINGS_ROUTE = "/v1/embeddings"
MAX_N = 128
MAX_TOKENS = 2**31 - 1  # OpenAI's own ceiling for max_tokens (a 32-bit integer)
MAX_HOLD_NANOS = 2**63 - 1  # SQLite's largest integer: no balance can cover more (402)
DEFAULT_CONTEXT_TOKENS = 200_000  # gateway.default_context_tokens
# Parts whose media the upstream fetches by URL, and the field holding it (video_url, audio_url
# and a Responses-shaped input_image, its image_url a string: vLLM takes them in chat too)
MEDIA_URL_PARTS = {
    "image_url": "image_url",
    "video_url": "video_url",
    "audio_url": "audio_url",
    "input_image": "image_url",
}
# Fields of a part without a `type` that vLLM reads as media all the same (its "simple" params)
_TYPELESS_MEDIA = ("image_url", "video_url", "audio_url")
_UNCAPPED = (
    "auto_max_new_tokens makes the answer as long as the context allows, past the output cap "
    "paid for in advance: send max_tokens instead"
)
_CONTENT_TYPES = (str, list)  # (a tuple: `str | list` in the call builds a union each time)
MESSAGE_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_NUMBER_FIELDS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
_TYPED_FIELDS: dict[str, tuple[type, ...]] = {
    "user": (str,),
    "tools": (list,),
    "tool_choice": (str, dict),
    "response_format": (dict,),
    "stop": (str, list),
    "stream_options": (dict,),
    "logit_bias": (dict,),
    "metadata": (dict,),
    "reasoning_effort": (str,),
    "parallel_tool_calls": (bool,),
}
# every field _check_types looks at: a body naming none of them (most) skips its walk
_TYPE_CHECKED = frozenset((*_NUMBER_FIELDS, *_TYPED_FIELDS, "stream", "seed"))


@dataclass
class ChatCall:
    """One admitted-to-be chat completion."""

    request_id: str
    user_id: int
    key_id: int
    body: JSON
    route: ModelRoute
    adapter: ProviderAdapter
    stream: bool
    include_usage: bool
    output_cap: int  # per choice; what the upstream is allowed to produce (in each model call)
    cap_from_client: bool
    input_estimate: int  # tokens (body bytes / 4), when the upstream never reports usage
    hold_nanos: int
    started: float
    choices: int = 1  # n
    ingress: str = CHAT_ROUTE  # the route (and so the wire dialect) it came by
    context: Any = None  # what the ingress dialect needs to write the answer (e.g. Responses')
    upstream_sec: float = 0.0  # time spent waiting on the upstream (the box's own is the rest)
    client_sec: float = 0.0  # a stream's time spent waiting for the client to take its bytes
    head_within: float = float("inf")  # a stream's head is sent by then (s from `started`):
    # half the read timeout the client's SDK declares (X-Stainless-Timeout), else no limit
    effort_added: bool = False  # a translation, not the client, asks the upstream for reasoning
    hints: frozenset[str] = frozenset()  # fields a translation passed on that may be left out
    hints_refused: frozenset[str] = frozenset()  # hints the provider refused (left out since)
    refused_fields: frozenset[str] = frozenset()  # output fields the upstream does not know
    shown_model: str = ""  # the model the answer names, when not the catalog id (an alias)
    loop_output: int = 0  # per choice: a server tool loop's output bound (output_token_bound)
    kept: Sequence[JSON] = ()  # /v1/responses/compact: the messages kept (no list per call)
    compaction_trims: int = 0  # times a compaction too long was asked again shorter
    media: tuple[int, int] | None = None  # the body's request_media, when admission walked it
    advisor: ModelRoute | None = None  # the advisor tool's catalog model (gateway/advisor.py)
    passes_nanos: int = 0  # of its hold: its compaction and advisor passes (a window each)
    off_loop: bool = False  # a large body: translated for the upstream on a body thread too
    unsettled: bool = False  # its settlement or release was refused: its hold is the sweep's
    left: bool = False  # its client went away: no new upstream attempt starts for nobody
    refused_keys: set[int] = field(default_factory=set)  # refused it, 429, no credit: not again
    limited: CodelaceError | None = None  # its keys' 429 or no credit: the answer when none left

    @property
    def answer_model(self) -> str:
        """The model the answer names: the catalog id, or the name the client sent."""
        return self.shown_model or self.route.id

    @property
    def output_limit(self) -> int:
        """The output tokens reserved for, all choices together: where a stream is cut."""
        return max(self.output_cap, self.loop_output) * self.choices

    def asked(self) -> Asked:
        """What it asked for, as a 402 of its admission words it (gateway/admission.py): only
        made on that refusal's path."""
        if self.ingress == EMBEDDINGS_ROUTE:
            return Asked(self.hold_nanos, None)
        route = self.ingress
        client = "Claude Code" if route == MESSAGES_ROUTE else ""
        client = "Codex" if route.startswith(RESPONSES_ROUTE) else client  # and its /compact
        output = self.output_limit, self.route.output_per_1m_nanos
        return Asked(self.hold_nanos, *output, self.passes_nanos, client, self.cap_from_client)

    def with_input(self, usage: Usage) -> Usage:
        """`usage` with its input guessed (`input_guess`) when the upstream counted none of it
        (estimated, no input tokens, or fewer than none: a negative count summed in): no call
        has an empty prompt (Ollama reports 0 for a prompt it had cached)."""
        if usage.estimated and usage.input_tokens <= 0:
            usage.input_tokens = self.input_guess()
        return usage

    def input_guess(self) -> int:
        """Input tokens when the upstream never reported them (never low: tally.py), the
        inline payloads of media left out of the body's bytes too (a media part's estimate
        counts them), reasoning sealed in a thinking block's signature counted as its text.
        The media as admission found them, when it kept them (a walk of a big body's blocks
        again cost as much as the first)."""
        media, messages_api = self.media, self.ingress == MESSAGES_ROUTE
        if media is None:
            media = request_media(self.body, messages_api)
        body, fewer = reasoning_shown(self.body) if messages_api else (self.body, 0)
        by_bytes = self.input_estimate - (media[1] + fewer) // CHARS_PER_TOKEN
        return max(by_bytes, input_estimate(body, media))


def _bad(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_request", param=param)


def _positive_int(body: JSON, name: str, maximum: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _bad(f"{name} must be a positive integer", name)
    if maximum is not None and value > maximum:
        raise _bad(f"{name} must be at most {maximum}", name)
    return value


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise _bad("messages must be a non-empty array of message objects", "messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(f"messages[{index}] must be an object", f"messages[{index}]")
        role = message.get("role")
        if not isinstance(role, str) or role not in MESSAGE_ROLES:
            raise _bad(
                f"messages[{index}].role must be one of {', '.join(sorted(MESSAGE_ROLES))}",
                f"messages[{index}].role",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, _CONTENT_TYPES):
            raise _bad(
                f"messages[{index}].content must be a string or an array of parts",
                f"messages[{index}].content",
            )
        if isinstance(content, list):
            _check_parts(content, f"messages[{index}].content")
        if message.get("audio") is not None:
            raise _bad(
                f"messages[{index}].audio names an audio answer stored on the provider's account, "
                "which the box does not keep for you: send the turn's text (its transcript)",
                f"messages[{index}].audio",
            )


def _check_parts(parts: list[Any], where: str) -> None:
    """A part's `type` is a name (an array or object there is no part type: it cannot even be
    looked up, and the media count of the hold looks up every part's); a file is sent inline,
    never by `file_id` or `file_url` (providers/file_refs.py, as /v1/responses refuses them);
    media by URL only by a web address (`refuse_local_url`)."""
    for index, part in enumerate(parts):
        kind = part.get("type", "") if isinstance(part, dict) else ""
        if not isinstance(kind, str):
            raise _bad(f"{where}[{index}].type must be a string", f"{where}[{index}].type")
        if kind in MEDIA_URL_PARTS:
            field = MEDIA_URL_PARTS[kind]
            _check_media_url(part.get(field), f"{where}[{index}].{field}")
        elif not kind and isinstance(part, dict):  # no type: vLLM reads it by its field
            for field in _TYPELESS_MEDIA:
                if field in part:
                    _check_media_url(part[field], f"{where}[{index}].{field}")
        file = part.get("file") if isinstance(part, dict) else None
        if isinstance(file, dict):
            refuse_file_reference(file, FILE_REFERENCES, f"{where}[{index}].file")


def _check_media_url(media: Any, where: str) -> None:
    """A media part's URL (`{"url": ...}`, or the URL as a string, as some clients send it)."""
    if isinstance(media, dict):
        refuse_local_url(media.get("url"), f"{where}.url")
    else:
        refuse_local_url(media, where)


def _check_types(body: JSON) -> None:
    if _TYPE_CHECKED.isdisjoint(body):  # (one look-up a field sent, not 16 walked)
        return
    for name in _NUMBER_FIELDS:
        value = body.get(name)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            raise _bad(f"{name} must be a number", name)
    for name, kinds in _TYPED_FIELDS.items():
        value = body.get(name)
        if value is not None and not isinstance(value, kinds):
            raise _bad(f"{name} has the wrong type", name)
    if body.get("stream") is not None and not isinstance(body.get("stream"), bool):
        raise _bad("stream must be true or false", "stream")
    include_usage = (body.get("stream_options") or {}).get("include_usage")
    if include_usage is not None and not isinstance(include_usage, bool):
        raise _bad("stream_options.include_usage must be true or false", "stream_options")
    seed = body.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise _bad("seed must be an integer", "seed")
    stop = body.get("stop")  # (a list of anything else was dropped toward Claude: no stop)
    if type(stop) is list and not all(isinstance(one, str) for one in stop):
        raise _bad("stop must be a string or an array of strings", "stop")


def validate_body(body: JSON) -> str:
    """Check the body's shape; returns the model id."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _bad("model is required and must be a string such as openai/gpt-5.4", "model")
    _check_messages(body.get("messages"))
    _check_types(body)
    return model


def output_cap(body: JSON, route: ModelRoute) -> tuple[int, bool]:
    """Tokens one choice may produce (the larger of the client's two fields if it sent both),
    and whether the client set that cap itself. (Comparisons: a list and `max()` took five
    times as long.) llama.cpp's server reads a chat body's `n_predict` over both: a call held
    for `max_tokens: 1` was answered thousands of tokens, unstreamed (relayed whole), and
    charged its hold; so it is a third such field, and its -1 (no cap) a 400; as is
    text-generation-webui's `auto_max_new_tokens: true` (an answer as long as the context)."""
    completion = _positive_int(body, "max_completion_tokens", MAX_TOKENS)
    tokens = _positive_int(body, "max_tokens", MAX_TOKENS)
    if "n_predict" in body:  # (one look-up: hardly any body names it)
        predict = _positive_int(body, "n_predict", MAX_TOKENS)
        completion = completion if predict is None or (completion or 0) > predict else predict
    if body.get("auto_max_new_tokens"):
        raise _bad(_UNCAPPED, "auto_max_new_tokens")
    if tokens is not None and (completion is None or tokens > completion):
        return tokens, True
    if completion is not None:
        return completion, True
    return route.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS, False


def worst_case_nanos(
    body: JSON, body_len: int, route: ModelRoute, output: tuple[int, int], context: int
) -> tuple[int, int]:
    """What a chat call may cost at most, for `output` (tokens per choice, choices): its input
    bound, its output, and to an `openai` provider (the body goes as sent) a prediction's
    tokens and the compaction passes a front of Claude runs for it (gateway/extra_samplings.py;
    no advisor calls: `refuse_advisor` has refused that tool before); and those passes' part."""
    prices = route.max_input_per_1m_nanos, route.output_per_1m_nanos
    as_sent = route.provider.kind == "openai"
    worst = token_cost_nanos(
        input_token_bound(body_len, body, context, route.upstream_model),
        (output[0] + (predicted_tokens(body) if as_sent else 0)) * output[1],
        *prices,
    )
    passes = compaction_nanos(body, context, *prices) if as_sent else 0
    return worst + passes, passes


def refuse_advisor(body: JSON) -> None:
    """400 for Anthropic's advisor tool on chat, even allowed for the provider: its calls are
    charged at the advisor model's own catalog prices, held to the catalog and the key's
    allow-list (gateway/advisor.py), which only /v1/messages to an anthropic provider can do
    (a front of Claude's chat usage does not tell the advisor's tokens apart)."""
    for index, _ in advisor_tools(body):
        where = f"tools.{index}"
        raise InvalidRequest(
            f"{where}: the advisor tool is taken on /v1/messages only (its calls are charged "
            "at the advisor model's own prices)",
            param=where,
        )


def predicted_tokens(body: JSON) -> int:
    """OpenAI's predicted outputs: the prediction's tokens the answer does not use are billed
    as output, past max_tokens. Reserved a token per byte (no token is shorter)."""
    prediction = body.get("prediction")
    return len(dumps(prediction)) if isinstance(prediction, dict) else 0


def new_call(
    ids: tuple[str, int, int],
    body: JSON,
    route: ModelRoute,
    adapter: ProviderAdapter,
    *,
    body_len: int,
    output_cap: int,
    hold_nanos: int,
    stream: bool = False,
    cap_from_client: bool = True,
    ingress: str = CHAT_ROUTE,
) -> ChatCall:
    """A call as every ingress adapter builds it, for (request id, user id, API key id): its
    hold capped at MAX_HOLD_NANOS, its input estimate from the body's bytes, its clock
    started."""
    request_id, user_id, key_id = ids
    return ChatCall(
        request_id=request_id,
        user_id=user_id,
        key_id=key_id,
        body=body,
        route=route,
        adapter=adapter,
        stream=stream,
        include_usage=False,
        output_cap=output_cap,
        cap_from_client=cap_from_client,
        input_estimate=input_token_estimate(body_len),
        hold_nanos=min(hold_nanos, MAX_HOLD_NANOS),
        started=time.monotonic(),
        ingress=ingress,
    )


def prepare_call(
    routes: RouteTable,
    body: JSON,
    body_len: int,
    *,
    request_id: str,
    user_id: int,
    key_id: int,
    default_context_tokens: int = DEFAULT_CONTEXT_TOKENS,
) -> ChatCall:
    """Validate, route and price a request (nothing is reserved yet)."""
    route = routes.resolve(validate_body(body))
    check_billed_fields(body, route.provider.allowed_fields, route.id)
    refuse_advisor(body)
    adapter = adapter_for(route.provider.kind).for_call(body)
    cap, from_client = output_cap(body, route)  # without the client's: the one sent upstream
    adapter.check_request(body, route.upstream_model, default_max_tokens=cap)
    choices = _positive_int(body, "n", MAX_N) or 1
    if "n_cmpl" in body:  # llama.cpp's count of completions, which its `n` only stands in for
        choices = max(choices, _positive_int(body, "n_cmpl", MAX_N) or 1)
    stream = bool(body.get("stream"))
    options = body.get("stream_options") or {}
    context = route.context_tokens or default_context_tokens
    loop = output_token_bound(body, cap, context)
    worst, passes = worst_case_nanos(body, body_len, route, (loop, choices), context)
    call = new_call(
        (request_id, user_id, key_id), body, route, adapter, body_len=body_len,
        output_cap=cap, hold_nanos=worst, stream=stream, cap_from_client=from_client,
    )  # fmt: skip
    call.include_usage = stream and options.get("include_usage") is True
    call.choices = choices
    call.loop_output = loop
    call.passes_nanos = passes
    return call
