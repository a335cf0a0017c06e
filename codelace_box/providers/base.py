"""The contract every provider adapter fulfils: pure translation, no I/O, no vendor SDK.

The gateway owns HTTP, keys, retries and money. An adapter only turns an OpenAI Chat
Completions request body into the upstream's request, and the upstream's answer (a JSON body,
or SSE events one by one) back into OpenAI-shaped dicts plus the token usage to bill.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


@dataclass(slots=True)
class SSEEvent:
    """One server-sent event as parsed from the upstream stream (one made for every event
    relayed: not frozen, whose `__init__` sets each field through `object.__setattr__`)."""

    data: str
    event: str | None = None


FAILURE_EVENTS = ("error", "response.failed")  # event names that report a failure


def is_blank(event: SSEEvent) -> bool:
    """Whether an event carries nothing: a `data:` that is empty or white space alone, named
    or not (some vLLM and llama.cpp builds send one while the prompt is read; the SSE rules
    dispatch it, with nothing in it to relay; an `event: message` with it is nothing either).
    Before a stream's first event it is passed over as a comment is
    (`StreamTranslator.until_finished`, gateway/stream_start.py), and skipped anywhere after
    it. One named as a failure (`event: error`, `response.failed`) is no blank: the upstream
    says it failed, if not how."""
    return is_empty(event.data) and event.event not in FAILURE_EVENTS


def is_empty(data: str) -> bool:
    """Whether an event's data is empty or white space alone: it carries nothing, and is
    skipped wherever it comes in a stream, unless named as a failure (is_blank: the
    translators ask only once their JSON parse failed, so an event that parses pays nothing)."""
    return not data or data.isspace()


def is_done(data: str) -> bool:
    """Whether an event's data is the `[DONE]` that ends an OpenAI-style stream, white space
    around it allowed (some servers send `data: [DONE] `; the OpenAI SDKs take it)."""
    return data == "[DONE]" or (len(data) < 32 and data.strip() == "[DONE]")


@dataclass
class AdvisorTokens:
    """The tokens of an Anthropic advisor model's calls inside one call (its `advisor_message`
    iterations), billed at that model's prices (or dearer if they report another model):
    parts of the call's Usage counts."""

    input_tokens: int = 0  # its cache reads and writes included
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0  # 1-hour writes included
    cache_write_1h_tokens: int = 0
    models: tuple[str, ...] = ()  # the models its iterations reported running them, distinct


@dataclass
class Usage:
    """Tokens to bill, and the OpenAI-shaped `usage` object to show the client."""

    input_tokens: int
    output_tokens: int
    details: JSON = field(default_factory=dict)
    estimated: bool = False  # counted by us because the upstream reported no usage
    cache_read_tokens: int = 0  # of input_tokens: read from the prompt cache
    cache_write_tokens: int = 0  # of input_tokens: written to the prompt cache (1h included)
    cache_write_1h_tokens: int = 0  # of cache_write_tokens: the 1-hour writes
    advisor: AdvisorTokens | None = None  # of all the above: an advisor model's (Anthropic)

    def openai_usage(self) -> JSON:
        """The `usage` object for the client: upstream details plus the three standard counts."""
        body = dict(self.details)
        body["prompt_tokens"] = self.input_tokens
        body["completion_tokens"] = self.output_tokens
        body["total_tokens"] = self.input_tokens + self.output_tokens
        return body


# Not frozen: made for every call, and a frozen dataclass's __init__ sets each field through
# object.__setattr__ (about 1,300 instructions a field); nothing changes one once made.
@dataclass
class UpstreamTarget:
    """Where one call goes: the provider's name for the model, the key, the base URL (empty:
    the kind's default), whether it streams, and the output cap to send when the body has none
    (None: send none)."""

    upstream_model: str
    api_key: str = field(repr=False)
    base_url: str
    stream: bool
    default_max_tokens: int | None
    stream_usage: bool = True  # an `openai` stream: ask for its usage (stream_options)
    # fields it does not know: `anthropic`'s output fields, `openai`'s max_tokens (the cap)
    refused_fields: frozenset[str] = frozenset()


@dataclass  # not frozen: made for every call (UpstreamTarget)
class UpstreamRequest:
    """What to POST upstream: full URL, headers (auth included) and the JSON body."""

    url: str
    headers: dict[str, str]
    json_body: JSON
    written: bytes | None = None  # json_body as sent, when written already (off the loop)


# An error type or code as providers write them (overloaded_error, invalid_request_error).
_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class UpstreamStreamError(Exception):
    """The upstream reported an error inside a stream that had already started. Its `code`
    is the upstream's error type when it looks like one, else upstream_error: the type is
    the usage row's error_code and the client's error code, and one holding half a
    surrogate pair (JSON's \\ud800), a NUL or 300 letters failed the settlement (a 500)."""

    def __init__(self, message: str, code: str = "upstream_error") -> None:
        super().__init__(message)
        self.message = message
        self.code = code if _CODE.fullmatch(code) else "upstream_error"


class StreamTranslator(ABC):
    """Turns one upstream stream, event by event, into OpenAI `chat.completion.chunk` dicts.

    Usage chunks are not emitted by the translator: it records `usage`, and the gateway sends
    the client its own usage chunk (with `cost_usd`) after settlement, when the client asked.
    """

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.finished = False  # the upstream signalled the normal end of the stream
        self.output_chars = 0  # relayed text/argument characters, to estimate if usage never comes
        self.input_tokens_seen = 0  # input tokens the upstream reported before the end, if any
        self.output_tokens_seen = 0  # output tokens any usage field so far implied (reasoning...)
        self.usage_seen: Usage | None = None  # counts reported before the end (message_start's)
        # the answer began (Anthropic's content_block_start), though it may show no output yet:
        # a thinking block whose text is left out streams nothing until its signature
        self.began = False
        self.heard = False  # an event came that was not blank (is_blank)

    @abstractmethod
    def feed(self, event: SSEEvent) -> list[JSON]:
        """Chunks to relay for one upstream event; raises UpstreamStreamError on an error event."""

    def finish(self) -> list[JSON]:
        """Chunks to relay once the upstream stream has ended (default: none)."""
        return []

    def cut(self) -> list[JSON]:
        """Chunks that complete the open block of a stream cut at the output cap, before the
        dialect's own ending (default: none; the Messages translation's sealed reasoning)."""
        return []

    def counted_whole(self) -> bool:
        """Whether the provider's final count arrived (a stream cut after it is whole): its
        usage, by default; a running count on content chunks is not (openai.py)."""
        return self.usage is not None

    def until_finished(self, events: Iterable[SSEEvent]) -> Iterator[SSEEvent]:
        """`events` up to the stream's normal end (`[DONE]`, message_stop): what an upstream
        sends after it, in the same read, is neither relayed nor counted (a later usage); blank
        events before the first other one are no events (is_blank)."""
        for event in events:
            if self.finished:
                return
            if not self.heard:
                if is_blank(event):
                    continue
                self.heard = True
            yield event


class ProviderAdapter(ABC):
    """Translation for one provider kind."""

    kind: str
    default_base_url: str
    # The (id, expires_at) of the code execution container the answer named, if any (an
    # Anthropic pass-through's, set as it reads the answer; kept in the settlement). A class
    # attribute read, where a method returning None cost a call on every call.
    container: tuple[str, str | None] | None = None

    def check_request(  # noqa: B027
        self, body: JSON, upstream_model: str = "", *, default_max_tokens: int | None = None
    ) -> None:
        """Raise InvalidRequest for fields this provider cannot honour with the model it will
        be sent to (its upstream name, "" when unknown) and the output cap sent when the body
        has none (`UpstreamTarget.default_max_tokens`); the default accepts all."""

    def for_call(self, body: JSON) -> ProviderAdapter:
        """The adapter for one chat completions call, should the body's options change how its
        answer reads (default: this one)."""
        return self

    @abstractmethod
    def build_request(self, body: JSON, target: UpstreamTarget) -> UpstreamRequest:
        """The upstream request for an OpenAI-format body (already validated by the gateway)."""

    @abstractmethod
    def parse_response(self, payload: JSON, public_model: str) -> tuple[JSON, Usage]:
        """An OpenAI `chat.completion` dict (model set to `public_model`) and its usage."""

    def usage_of(self, raw: Any) -> Usage | None:
        """Usage from the `usage` object of an answer (found alone, at the end of an answer too
        large to parse whole); None when it is not one (default: never)."""
        return None

    @abstractmethod
    def error_message(self, status: int, payload: bytes) -> str:
        """A human message from an upstream error body (never echoing credentials)."""

    def error_code(self, status: int, message: str) -> tuple[str, str] | None:
        """OpenAI's (code, param) for an upstream refusal whose own words say which one it is
        (a context overflow: context_length_exceeded, which agents act on); None by default."""
        return None

    def error_fields(self, payload: bytes) -> tuple[str | None, str | None]:
        """The upstream's own OpenAI `code` and `param` in an error body, relayed to the client
        as they are (gateway/upstream.py); (None, None) by default: no OpenAI error object."""
        return None, None

    def wants_payment(self, status: int, message: str) -> bool:
        """Whether an error answer (its status and `error_message`) says the operator's
        account at the provider cannot pay: HTTP 402 Payment Required, by default."""
        return status == 402

    def without_hints(self, body: JSON, names: set[str]) -> JSON:
        """The body without hints its translation passes on that the upstream refused as
        unknown fields (gateway/upstream.py); by default, without those fields."""
        return {name: value for name, value in body.items() if name not in names}

    def hour_writes(self, body: JSON) -> bool:
        """Whether the cache writes a call with this body reports without a 5-minute/1-hour
        split are all 1-hour ones, billed at that price (default: no)."""
        return False

    def without_effort(self, body: JSON) -> JSON:
        """The body asking the upstream for no reasoning effort (for a model that refuses
        `reasoning_effort`: gateway/upstream.py); by default, without that field."""
        return {name: value for name, value in body.items() if name != "reasoning_effort"}

    @abstractmethod
    def stream_translator(self, public_model: str) -> StreamTranslator:
        """A fresh translator for one streamed response."""

    @abstractmethod
    def key_check_request(self, base_url: str, api_key: str) -> tuple[str, dict[str, str]]:
        """The URL and headers of a GET that answers 2xx only for a key the upstream accepts
        (catalog/keycheck.py sends it)."""
