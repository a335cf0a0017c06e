"""What a form's refusal may quote of what the operator typed: part of the services door
(imported only by admin_tui.services, which re-exports it for the form dialog).

The feature functions word their refusals for the CLI and the API, often quoting the value
(`got '...'`, `no model ...`): a provider key pasted into the wrong field was shown back whole.
`quoted_back` is the one rule every form's refusal goes through: the message still names the
field and the rule; a key-like token typed is quoted masked as a key's hint is (`sk-…a1b2`), and
a long typed value (or a long part of one: a comma-separated model, a word after a URL) only by
its start and its end (two long model ids with one start are still told apart)."""

from __future__ import annotations

from collections.abc import Iterable

from codelace_box.crypto import mask_tokens

QUOTED_WHOLE = 32  # a quoted run of what was typed up to this long stays (its keys masked)
SHOWN_START = 20  # characters of a longer run left, then "…"
SHOWN_END = 12  # and its last characters (`openrouter/anthropic…ude-opus-4.1`)
MIN_PIECE = 8  # shorter pieces are not looked for (they may be words of the message itself)


def quoted_back(message: str, typed: Iterable[str]) -> str:
    """`message` with every quote of a long or key-like piece of `typed` cut to its start:
    the parts first (a key after a URL), then what is left of the whole."""
    for piece in sorted(_pieces(typed), key=len):
        message = _cut_quotes(message, piece)
    return message


def _pieces(typed: Iterable[str]) -> set[str]:
    """The values typed, and their comma- or space-separated parts, worth looking for."""
    found: set[str] = set()
    for value in typed:
        for part in (p.strip() for p in (value, *value.split(","), *value.split())):
            if len(part) >= MIN_PIECE:
                found.add(part)
    return found


def _start_of(run: str) -> str | None:
    """What a refusal shows of a run of typed text it quotes (None: the whole of it): its
    key-like tokens masked (crypto.mask_tokens: a key keeps its hint, `sk-…a1b2`; model ids
    stay), and what is still long cut to its start and its end."""
    shown = mask_tokens(run, len(run) + 1)
    if len(shown) > QUOTED_WHOLE:
        shown = shown[:SHOWN_START] + "…" + shown[-SHOWN_END:]
    return None if shown == run else shown


def _cut_quotes(message: str, piece: str) -> str:
    """`message` with each run of `piece` in it (from its start on, as long as it goes: a value
    may be quoted cut to its first 40 characters) cut to its start (`_start_of`); letter case
    aside where lower-casing keeps the lengths (an address may be quoted lower-cased)."""
    fold = len(message.lower()) == len(message) and len(piece.lower()) == len(piece)
    seen, sought = (message.lower(), piece.lower()) if fold else (message, piece)
    at = seen.find(sought[:MIN_PIECE])
    while at >= 0:
        end = at
        while end < len(seen) and end - at < len(sought) and seen[end] == sought[end - at]:
            end += 1
        shown = _start_of(message[at:end])
        if shown is not None:
            message = message[:at] + shown + message[end:]
            seen = seen[:at] + shown + seen[end:]
            end = at + len(shown)
        at = seen.find(sought[:MIN_PIECE], end)
    return message
