"""Hints a translation passes on that an upstream may not know: asked again without, remembered.

`/v1/responses` hands an `openai` provider the client's `prompt_cache_key` and
`safety_identifier`: OpenAI's Chat Completions takes both, and neither changes the answer's
content or its price. Stricter compatible servers refuse a field they do not know: Groq (400
"property 'prompt_cache_key' is unsupported"), Cerebras (422 "body.prompt_cache_key: property
'body.prompt_cache_key' is unsupported"), Gemini's OpenAI endpoint (400 'Invalid JSON payload
received. Unknown name "prompt_cache_key": Cannot find field.'), vLLM before 0.6.5 (400
"extra_forbidden ... 'prompt_cache_key' ... Extra inputs are not permitted"), OpenAI's own
wording for a field it lacks ("Unrecognized request argument supplied: X", "Unknown parameter:
'X'"). Such a refusal of a hint the box added is not the client's error: the call goes again
without it (gateway/upstream.py), and once the provider took the call so, `RefusedHints`
remembers, per provider and base URL, for an hour, so that its next calls go without it at once
(not sooner: a refusal of a client's own field whose name holds the hint's, `stream_options.x`,
would otherwise drop the hint from every user's calls). A client's own fields on
/v1/chat/completions are never dropped: its refusal is relayed. Pure bookkeeping, no I/O.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable

HINT_FIELDS = ("prompt_cache_key", "safety_identifier")
STREAM_OPTIONS = "stream_options"  # added by the box to every `openai` stream (upstream.py)
REMEMBER_SEC = 3600.0  # then the provider is offered the hint again (it may have learnt it)
REFUSING_STATUSES = (400, 422)
# What a server says of a field it does not take, whatever its words for it.
_UNKNOWN_FIELD_RE = re.compile(
    r"\bunsupported\b|\bnot supported\b|\bunrecognized\b|\bunknown (name|parameter|field)\b|"
    r"extra inputs are not permitted|\bextra_forbidden\b|cannot find field|"
    r"\bnot permitted\b|\bunexpected (field|property|keyword)\b",
    re.IGNORECASE,
)
# The field a refusal says to send instead ("Use 'max_completion_tokens' instead."): not refused
_INSTEAD_RE = re.compile(r"\buse\s+['`\"]?[\w.]+['`\"]?\s+instead\b", re.IGNORECASE)


def refused_hints(status: int, message: str, hints: Iterable[str]) -> set[str]:
    """The hints an upstream's refusal (its status and message) says it does not know (not
    the field it says to use instead: "Use 'max_completion_tokens' instead")."""
    if status not in REFUSING_STATUSES or _UNKNOWN_FIELD_RE.search(message) is None:
        return set()
    message = _INSTEAD_RE.sub("", message)
    return {name for name in hints if re.search(rf"\b{re.escape(name)}\b", message)}


class RefusedHints:
    """Which hints each provider (at its base URL) refused lately, in this process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until: dict[tuple[int, str, str], float] = {}  # (provider, base, hint) -> until

    def remember(self, provider_id: int, base_url: str, hints: Iterable[str]) -> None:
        """This provider refused these hints: leave them out for a while."""
        until = self._clock() + REMEMBER_SEC
        for name in hints:
            self._until[(provider_id, base_url, name)] = until

    def refused(self, provider_id: int, base_url: str, hints: Iterable[str]) -> set[str]:
        """The hints among these that this provider refused within the last hour (none asked
        for on every call, before any refusal: no clock read then)."""
        if not self._until:
            return set()
        now = self._clock()
        return {
            name for name in hints
            if self._until.get((provider_id, base_url, name), float("-inf")) > now
        }  # fmt: skip
