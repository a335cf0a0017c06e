"""Structured-output fields an Anthropic-kind upstream refuses as unknown: asked again without.

A 400 (or 422) that names `output_config` or `output_format` itself as a field the server does
not know ("output_config: Extra inputs are not permitted", "Unknown parameter: output_format",
"extraneous key [output_config] is not permitted") is not the client's error but the upstream's
lag (providers/anthropic_output.py rewrites the request): the call goes once more, per refused
field, not counted as a retry, under the same hold, and the provider (at its base URL) is not
sent the field again for an hour once it took the call so (gateway/hints.py RefusedHints). A
refusal of what the field holds ("output_config.format.schema: ... is not supported") names a
part of it, and is relayed.

An `openai` upstream that is not OpenAI's own address gets the output cap the box adds as
`max_tokens`, which OpenAI's reasoning models refuse wherever they are served (Azure, a proxy in
front of OpenAI: 400 "Unsupported parameter: 'max_tokens' is not supported with this model. Use
'max_completion_tokens' instead."): the call goes once more with the cap as
`max_completion_tokens`, remembered so too. So does a client's own `max_completion_tokens` that
the box gave `max_tokens` beside (for the servers that read only that one), to a server that
takes the two only one at a time (Volcengine Ark: "max_tokens and max_completion_tokens cannot
be set at the same time"; OpenAI's own words for it: "Setting 'max_tokens' and
'max_completion_tokens' at the same time is not supported"): it goes with the client's field
alone. A client's own `max_tokens` (/v1/chat/completions) is theirs: its refusal is relayed, as
OpenAI relays it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection

from codelace_box.errors import CodelaceError
from codelace_box.gateway.hints import REFUSING_STATUSES, refused_hints
from codelace_box.gateway.request import ChatCall
from codelace_box.gateway.routing import RouteTable
from codelace_box.providers.anthropic_output import OUTPUT_FIELDS
from codelace_box.providers.openai import CAP_REFUSED, OpenAIAdapter

log = logging.getLogger("codelace_box.gateway")
_UNKNOWN_RE = re.compile(
    r"extra inputs are not permitted|\bextra_forbidden\b|\bunknown (name|parameter|field)\b|"
    r"\bunrecognized\b|\bunexpected (field|property|keyword)\b|\bextraneous\b|"
    r"\bnot (supported|permitted|allowed)\b|\bunsupported\b",
    re.IGNORECASE,
)
# A refusal of the two cap fields in one body (whatever else it says: "are not valid")
_BOTH_CAPS_RE = re.compile(
    r"\bsame time\b|\bmutually exclusive\b|\bsimultaneous(ly)?\b|\bboth\b|\btogether\b|"
    r"\bonly one of\b",
    re.IGNORECASE,
)
_OTHER_CAP = "max_completion_tokens"


def refused_output_fields(status: int, message: str) -> set[str]:
    """The output fields an upstream's refusal names as unknown (not a part of one)."""
    if status not in REFUSING_STATUSES or _UNKNOWN_RE.search(message) is None:
        return set()
    return {name for name in OUTPUT_FIELDS if re.search(rf"\b{name}\b(?![.\[])", message)}


def caps_refused_together(status: int, message: str) -> bool:
    """Whether an upstream's refusal is of `max_tokens` and `max_completion_tokens` sent
    together (the one the box added then goes)."""
    return (
        status in REFUSING_STATUSES
        and _OTHER_CAP in message
        and re.search(rf"\b{CAP_REFUSED}\b", message) is not None
        and _BOTH_CAPS_RE.search(message) is not None
    )


def _refusable(call: ChatCall) -> Collection[str]:
    """The fields of the call the box may send in another form: an Anthropic provider's output
    fields; the cap an `openai` provider gets as max_tokens when the box adds it (a client's
    own max_tokens on /v1/chat/completions is not the box's to move)."""
    kind = call.route.provider.kind
    if kind == "anthropic":
        return OUTPUT_FIELDS
    own_cap = isinstance(call.adapter, OpenAIAdapter) and call.body.get(CAP_REFUSED) is not None
    return (CAP_REFUSED,) if kind == "openai" and not own_cap else ()


def leave_out_refused_output(routes: RouteTable, call: ChatCall) -> None:
    """Before sending: the output fields this provider refused lately stay out."""
    fields = _refusable(call)
    if fields:
        provider = call.route.provider
        if refused := routes.refused_hints.refused(provider.id, provider.base_url, fields):
            call.refused_fields = call.refused_fields | refused


def drop_refused_output(call: ChatCall, error: CodelaceError, status: int) -> bool:
    """Ask again without the output fields the upstream refused as unknown (each once),
    remembered once it took the call so (gateway/upstream.py, as hints are: a client's own
    field whose name holds one, refused again, must not drop it for every user); False when
    the refusal (`error`, of the upstream's HTTP `status`) names none not yet left out."""
    provider = call.route.provider
    fields = _refusable(call)
    if provider.kind == "anthropic":
        names = refused_output_fields(status, error.message) - call.refused_fields
    else:
        names = refused_hints(status, error.message, fields)
        if CAP_REFUSED in fields and caps_refused_together(status, error.message):
            names.add(CAP_REFUSED)
        names -= call.refused_fields
    if not names:
        return False
    call.refused_fields = call.refused_fields | names
    call.hints_refused = call.hints_refused | names
    log.info("%s refuses %s; asking again in a form it takes", provider.name,
             ", ".join(sorted(names)))  # fmt: skip
    return True
