"""Counting tokens the provider did not (yet) count: a stream's output as it is relayed, the
input of a call whose provider never said, and the media parts whose size no one can know.

What is charged when the provider never counted never comes out low on purpose: an ASCII
character counts a quarter token, any other character (CJK, ...) a whole one, one past the
basic plane (emoji, rare ideographs) its four bytes, each
relayed piece of output at least one token, and each media part of unknown size 3,000 tokens
(its inline base64 payload not counted as text besides).
The caller never lets it undercut what the provider already reported in part (running usage,
reasoning token counts).

Where a stream is cut at its output cap the count must not come out high instead (that would cut
an answer the provider was still allowed to give): each piece of output counts one token
(servers stream about one token per event), or 16 characters of text one token if that is
more; a base64 payload (encrypted reasoning, audio, inline media) counts only as its piece.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

CHARS_PER_TOKEN = 4  # ASCII characters per token
MAX_CHARS_PER_TOKEN = 16  # hardly any token is longer
ESTIMATED_MEDIA_TOKENS = 3000  # a media part of unknown size, when the provider never said
TEXT_PARTS = frozenset({"text", "refusal"})
# Delta keys that carry no generated text: ids, labels (a reasoning detail's `format`), the
# whole thinking blocks (their text was relayed already as reasoning_content; a signature is not
# output), and an Anthropic citation (its `cited_text` quotes the documents: not output tokens).
_NOT_OUTPUT = frozenset(
    {"role", "type", "id", "index", "format", "thinking_blocks", "signature", "citation"}
)
# A delta's reasoning text, and where some servers write it again: vLLM (0.11 on) repeats
# `reasoning` as the deprecated `reasoning_content`, OpenRouter in `reasoning_details`.
_REASONING_KEYS = ("reasoning", "reasoning_content")
# Keys whose strings are base64 payloads, not text (OpenRouter's encrypted reasoning, audio).
_OPAQUE_KEYS = frozenset({"data", "encrypted_content"})
# A delta with no other key than these holds its text in `content` alone, if anywhere
_TEXT_DELTA_KEYS = _NOT_OUTPUT | {"content"}
# Anthropic deltas of output billed apart from the request's max_tokens: server-side
# compaction's summary (its own sampling, in `usage.iterations`), which must not cut the answer
# at the output cap; counted as an opaque payload is (the upper count only).
_UNCAPPED_DELTAS = frozenset({"compaction_delta"})
_ANTHROPIC_MEDIA = ("image", "document")
_RESPONSES_MEDIA = ("input_image", "input_file", "input_audio")


def _split(text: str) -> tuple[int, int]:
    """(ASCII characters, other characters) of a text, a character past the basic plane (an
    emoji, a hieroglyph, a rare ideograph: four UTF-8 bytes, four tokens to a byte-level
    tokenizer without a merge for it) counted four (its UTF-16 surrogate pair shows it)."""
    if text.isascii():
        return len(text), 0
    ascii_chars = len(text.encode("ascii", "ignore"))
    astral = len(text.encode("utf-16-le", "surrogatepass")) // 2 - len(text)
    return ascii_chars, len(text) - ascii_chars + 3 * astral


def _tokens(ascii_chars: int, other_chars: int) -> int:
    return -(-ascii_chars // CHARS_PER_TOKEN) + other_chars


def text_tokens(text: str) -> int:
    """A conservative token count of a text."""
    return _tokens(*_split(text))


def output_tokens(message: Any) -> int:
    """A conservative token count of the generated text in a message or delta."""
    ascii_chars, other_chars, opaque_chars = _delta_chars(message)
    return _tokens(ascii_chars + opaque_chars, other_chars)


def _delta_chars(value: Any, key: str | None = None) -> tuple[int, int, int]:
    """(ASCII, other, opaque) characters of the generated text in a delta, at any depth. Opaque:
    base64 payloads (encrypted reasoning, audio under `data`, inline `data:` media), which say
    little of the tokens produced: an upper count takes them as text, a lower one leaves them.
    A delta of a text alone (and a role, an index: nearly every chunk of a stream) is counted
    without the walk, as the walk counts it."""
    if isinstance(value, str):
        return _chars(value, key)
    if isinstance(value, dict) and value.keys() <= _TEXT_DELTA_KEYS:
        content = value.get("content")
        if isinstance(content, str):
            return _chars(content, "content")
        if content is None:
            return 0, 0, 0
    return _walked_chars(value, key)


def _chars(text: str, key: str | None) -> tuple[int, int, int]:
    if key in _OPAQUE_KEYS or text.startswith("data:"):
        return 0, 0, len(text)
    return (*_split(text), 0)


def _walked_chars(value: Any, key: str | None = None) -> tuple[int, int, int]:
    """`_delta_chars` of a value that is no text, by the walk of its items."""
    if isinstance(value, dict):
        items: Any = _output_items(value)
    elif isinstance(value, list):
        items = ((key, v) for v in value)
    else:
        return 0, 0, 0
    ascii_chars = other_chars = opaque_chars = 0
    for name, item in items:
        more_ascii, more_other, more_opaque = _delta_chars(item, name)
        ascii_chars += more_ascii
        other_chars += more_other
        opaque_chars += more_opaque
    return ascii_chars, other_chars, opaque_chars


def _output_items(delta: dict[str, Any]) -> list[tuple[str, Any]]:
    """The items of a delta (or any object in it) that may carry generated text, each piece of
    reasoning once: a reasoning text written again in the same delta (as `reasoning` and
    `reasoning_content`, or in `reasoning_details` beside them) counts once; of those details
    only their opaque payloads (encrypted reasoning) are counted then."""
    items = [(k, v) for k, v in delta.items() if k not in _NOT_OUTPUT]
    if "reasoning" not in delta and "reasoning_content" not in delta:  # (most deltas)
        return items
    said = [delta.get(k) for k in _REASONING_KEYS if isinstance(delta.get(k), str) and delta[k]]
    if not said:
        return items
    kept: list[tuple[str, Any]] = []
    for name, item in items:
        if name == "reasoning_content" and len(said) == 2 and said[0] == said[1]:
            continue
        kept.append((name, _opaque_parts(item) if name == "reasoning_details" else item))
    return kept


def _opaque_parts(details: Any) -> list[dict[str, Any]]:
    """The opaque payloads of reasoning details, without their text (said elsewhere)."""
    found = details if isinstance(details, list) else []
    return [{k: v for k, v in d.items() if k in _OPAQUE_KEYS} for d in found if isinstance(d, dict)]


def _is_responses_delta(kind: Any) -> bool:
    """A native Responses stream's output event (`response.output_text.delta`, reasoning,
    refusal, function or custom tool call arguments), whose `delta` is the text produced."""
    return isinstance(kind, str) and kind.startswith("response.") and kind.endswith(".delta")


class OutputTally:
    """The output relayed so far, counted chunk by chunk."""

    __slots__ = ("ascii_chars", "opaque_chars", "other_chars", "pieces")

    def __init__(self) -> None:
        self.ascii_chars = 0
        self.other_chars = 0
        self.opaque_chars = 0  # base64 payloads: counted by `tokens`, not by `least_tokens`
        self.pieces = 0  # deltas that carried output

    def add(self, chunk: dict[str, Any]) -> bool:
        """Count one `chat.completion.chunk` (or Anthropic `content_block_delta` event, as
        /v1/messages relays, or a native Responses `*.delta` event); whether it carried
        output."""
        carried = False
        kind = chunk.get("type")  # (a chat chunk has none: no call to _is_responses_delta)
        if kind is not None and (kind == "content_block_delta" or _is_responses_delta(kind)):
            deltas: list[Any] = [chunk.get("delta")]
        else:
            deltas = [c.get("delta") for c in chunk.get("choices") or () if isinstance(c, dict)]
        for delta in deltas:
            ascii_chars, other_chars, opaque_chars = _delta_chars(delta)
            if type(delta) is dict and delta.get("type") in _UNCAPPED_DELTAS:  # no cut: opaque
                opaque_chars += ascii_chars + other_chars
                ascii_chars = other_chars = 0
            if ascii_chars or other_chars or opaque_chars:
                carried = True
                self.pieces += 1
                self.ascii_chars += ascii_chars
                self.other_chars += other_chars
                self.opaque_chars += opaque_chars
        return carried

    @property
    def tokens(self) -> int:
        """Output tokens produced so far, by a count that does not come out low."""
        return max(self.pieces, _tokens(self.ascii_chars + self.opaque_chars, self.other_chars))

    @property
    def least_tokens(self) -> int:
        """Output tokens produced so far, by a count that does not come out high (a base64
        payload, however long, counts only as the piece it came in)."""
        by_chars = -(-(self.ascii_chars + self.other_chars) // MAX_CHARS_PER_TOKEN)
        return by_chars if by_chars > self.pieces else self.pieces  # (read at every chunk)


def is_unsized(part: Any) -> bool:
    """Whether a message content part is media, whose tokens cannot be known from the body: any
    part but text. Inline (`data:`) media is no exception: a provider counts an image by its
    pixels and the model (gpt-4o-mini counts 2,833 tokens for a one-pixel PNG of 100 bytes), a
    PDF by its pages, audio by its seconds, none of them by their bytes."""
    return isinstance(part, dict) and part.get("type") not in TEXT_PARTS


def unsized_parts(messages: Any) -> int:
    """How many content parts of a request's messages are media of unknown size; an assistant
    message's `audio` (a previous audio answer replayed by its id) is one too."""
    count = 0
    for message in messages if isinstance(messages, list) else ():
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, list):
            count += sum(1 for part in content if is_unsized(part))
        if message.get("audio"):
            count += 1
    return count


def input_estimate(body: dict[str, Any], media: tuple[int, int] = (0, 0)) -> int:
    """Input tokens of a request whose provider never reported them: its characters, but for
    the inline payloads of its media, plus ESTIMATED_MEDIA_TOKENS per media part (`media`:
    `request_media`'s count and payload characters). Counted a quarter token per base64
    character, a screenshot came to 200,000 tokens. It costs a serialisation of the body: only
    when it is needed."""
    parts, inline = media
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return text_tokens(text) - inline // CHARS_PER_TOKEN + ESTIMATED_MEDIA_TOKENS * parts


def request_media(body: dict[str, Any], messages_api: bool) -> tuple[int, int]:
    """(media parts of unknown size, characters of their inline payloads) of a request body:
    a Messages API body's (`messages_api`), a chat body's, or a native Responses body's."""
    if messages_api:
        return anthropic_media(body.get("messages"))
    messages = body.get("messages")
    if messages is None and "input" in body:
        return responses_media(body.get("input"))
    return unsized_parts(messages), inline_media_chars(messages)


def anthropic_media(value: Any) -> tuple[int, int]:
    """Images and documents anywhere in a Messages API content (tool results and document
    content included), whatever their source: media whose tokens the body does not show. Inline
    data is no exception (as for chat): a PDF costs by its pages, an image by its pixels (an
    OpenAI model counts thousands of tokens for a one-pixel PNG). A plain-text document is
    text, counted by its bytes. Also: the characters of their inline (base64) data, which are
    no text the model reads token by token."""
    count, inline, _ = anthropic_blocks(value)
    return count, inline


def anthropic_blocks(value: Any) -> tuple[int, int, bool]:
    """`anthropic_media` of a Messages API content, and whether any object in it has a
    `file_id` (a stored file is named somewhere, or a tool's input or a code run's output
    merely says one): one walk serving both the hold and the stored-file refusal, which looks
    for the path only when this says there may be one (gateway/messages.py)."""
    return _media_in(value, _ANTHROPIC_MEDIA, _anthropic_payload)


def _anthropic_payload(block: dict[str, Any]) -> int | None:
    """An image or document block's inline data characters; None when its source is no media
    (a text or content one)."""
    source: Any = block.get("source")
    if type(source) is not dict or source.get("type") in ("text", "content"):
        return None
    data = source.get("data")
    return len(data) if isinstance(data, str) else 0


def responses_media(value: Any) -> tuple[int, int]:
    """`anthropic_media` of a Responses API `input`: its `input_image`, `input_file` and
    `input_audio` parts, at any depth (a function call's output too), and the characters of
    their inline payloads (a data URL, `file_data`, audio `data`)."""
    count, inline, _ = _media_in(value, _RESPONSES_MEDIA, _responses_payload)
    return count, inline


def _responses_payload(part: dict[str, Any]) -> int:
    audio = part.get("input_audio")
    inline = _payload_chars(part) + _inline_url(part.get("image_url"))
    return inline + (_payload_chars(audio) if type(audio) is dict else 0)


def _media_in(
    value: Any, types: tuple[str, ...], payload_of: Callable[[dict[str, Any]], int | None]
) -> tuple[int, int, bool]:
    """(media parts, their inline payload characters, whether an object has a `file_id`)
    anywhere in a parsed JSON value: the objects whose `type` is one of `types` and whose
    payload `payload_of` reads (None: no media after all)."""
    count = inline = 0
    named = False
    stack = [value]
    push = stack.append
    while stack:
        item = stack.pop()
        if type(item) is list:
            stack.extend(item)
            continue
        if type(item) is not dict:
            continue
        if item.get("type") in types and (chars := payload_of(item)) is not None:
            count += 1
            inline += chars
        if not named and item.get("file_id") is not None:
            named = True
        for held in item.values():  # (a loop: a generator into extend cost 1.7 times as much)
            if type(held) is dict or type(held) is list:
                push(held)
    return count, inline, named


def inline_media_chars(messages: Any) -> int:
    """The characters of the inline (base64, `data:` URL) payloads of a request's media parts
    (an image's `image_url.url`, a file's `file_data`, audio's `data`): no text the model reads
    token by token, their tokens are what the media's reservation covers."""
    total = 0
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else ():
            if is_unsized(part):
                total += sum(_payload_chars(v) for v in part.values() if isinstance(v, dict))
    return total


def _inline_url(url: Any) -> int:
    return len(url) if isinstance(url, str) and url.startswith("data:") else 0


def _payload_chars(media: dict[str, Any]) -> int:
    """The inline payload characters of one media object (`{"url": "data:..."}`, ...)."""
    inline = _inline_url(media.get("url"))
    for key in ("file_data", "data"):
        value = media.get(key)
        inline += len(value) if isinstance(value, str) else 0
    return inline
