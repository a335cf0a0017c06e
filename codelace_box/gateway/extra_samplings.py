"""The samplings an Anthropic call may run besides the model's answer, and the tokens to hold.

Anthropic bills two kinds of extra sampling inside one /v1/messages call and reports them only
in `usage.iterations` (providers/anthropic_response.py adds them to the charge):
- server-side compaction (`context_management.edits` of type `compact_*`): a summarisation
  pass by the requested model over the whole conversation, "an additional sampling step" billed
  as such. One sampling's input and output together stay within the context window, so a pass
  costs at most the window's tokens at the dearer of the input and output prices. Its trigger
  is checked at the start of each sampling of a server tool's loop, so such a call may compact
  once per turn: SERVER_LOOP_TURNS passes then, else one.
- the advisor server tool (`advisor_*`, allowed only by the operator's --allow-field): each
  call is an inference of the advisor model over the whole transcript (at most the window), its
  output at most the tool's `max_tokens` (else the window); as many calls as its `max_uses`,
  else one per turn of the loop (SERVER_LOOP_TURNS). Anthropic bills them at the advisor
  model's own rates, and so does the box: at its catalog model's prices (or the dearer of those
  and the requested model's, for a call that reports another model), which the hold covers
  (gateway/advisor.py).
/v1/chat/completions holds for compaction too (`compaction_nanos`): an `openai` provider may be
a front of Claude that passes the compact edit on and reports the pass in its usage. Not for the
advisor: chat refuses that tool on every provider (request.refuse_advisor, before the hold), as
/v1/responses refuses both.
"""

from __future__ import annotations

from typing import Any

from codelace_box.gateway.metering import SERVER_LOOP_TURNS
from codelace_box.money import token_cost_nanos
from codelace_box.providers.billed_fields import runs_server_tools


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _count(value: Any) -> int | None:
    """A positive integer field, else None."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return value if ok else None


def asks_for_compaction(body: dict[str, Any]) -> bool:
    """Whether the body turns server-side compaction on (a `compact_*` context edit)."""
    management = body.get("context_management")
    if not isinstance(management, dict):  # (most bodies: no generator made for nothing)
        return False
    edits = management.get("edits")
    return any(
        isinstance(edit, dict) and str(edit.get("type", "")).startswith("compact_")
        for edit in _listed(edits)
    )


def compaction_tokens(body: dict[str, Any], context_tokens: int) -> int:
    """The tokens (input and output together) of the compaction passes a call may run: the
    window per pass, one pass, or one per turn of a server tool's loop. 0 without compaction."""
    if not asks_for_compaction(body):
        return 0
    passes = SERVER_LOOP_TURNS if runs_server_tools(body) else 1
    return passes * context_tokens


def advisor_tokens(body: dict[str, Any], context_tokens: int) -> tuple[int, int]:
    """The (input, output) tokens the advisor tools of a body may be billed: per call the
    window read and its `max_tokens` (else the window) written; calls: `max_uses`, else one per
    turn of the loop, never more than SERVER_LOOP_TURNS."""
    read = written = 0
    for tool in _listed(body.get("tools")):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if not isinstance(kind, str) or not kind.lower().startswith("advisor_"):
            continue
        calls = min(_count(tool.get("max_uses")) or SERVER_LOOP_TURNS, SERVER_LOOP_TURNS)
        output = min(_count(tool.get("max_tokens")) or context_tokens, context_tokens)
        read += calls * context_tokens
        written += calls * output
    return read, written


def compaction_nanos(
    body: dict[str, Any], context_tokens: int, input_per_1m: int, output_per_1m: int
) -> int:
    """The most the compaction passes a chat body asks for may cost: their tokens at the dearer
    of the input and output prices. For a chat call, whose provider may be a front of Claude
    (OpenRouter, LiteLLM) passing the compact edit on and reporting the pass in its usage;
    /v1/messages holds the same tokens in its own sum (gateway/messages.py)."""
    tokens = compaction_tokens(body, context_tokens)
    if not tokens:  # (most bodies)
        return 0
    return token_cost_nanos(tokens, 0, max(input_per_1m, output_per_1m), 0)
