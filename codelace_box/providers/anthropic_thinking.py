"""A client's own Anthropic `thinking` on /v1/chat/completions, as LiteLLM takes it (pure code).

LiteLLM users turn Claude's extended thinking on with Anthropic's own field beside the OpenAI
ones: `thinking: {"type": "enabled", "budget_tokens": N}` (or `adaptive`, or `disabled`). It
is checked here and sent as given (adaptive asks for the summarized text unless the client said
otherwise, as reasoning_effort does: reasoning_content needs it); what Anthropic would refuse is
a 400 naming the field. `reasoning_effort` is the OpenAI way to the same thing: one of the two.
"""

from __future__ import annotations

from typing import Any

from codelace_box.errors import InvalidRequest

JSON = dict[str, Any]

MIN_THINKING_BUDGET = 1024
_KEYS = {"enabled": {"type", "budget_tokens", "display"}, "adaptive": {"type", "display"},
         "disabled": {"type"}}  # fmt: skip
_DISPLAYS = ("summarized", "omitted")


def _bad(message: str, param: str = "thinking") -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", param=param)


def thinking_field(body: JSON) -> str | None:
    """The field that turns thinking on ("reasoning_effort" or "thinking"), or None."""
    if body.get("reasoning_effort") not in (None, "none"):
        return "reasoning_effort"
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        return "thinking"
    return None


def client_thinking(body: JSON, max_tokens: int, adaptive_only: bool) -> JSON | None:
    """The `thinking` object to send for the client's own one (None: none asked for)."""
    thinking = body.get("thinking")
    if thinking is None:
        return None
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if not isinstance(thinking, dict) or kind not in _KEYS:
        raise _bad("must be {type: enabled, budget_tokens}, {type: adaptive} or {type: disabled}")
    if body.get("reasoning_effort") not in (None, "none"):
        raise _bad("send either thinking or reasoning_effort, not both")
    extra = set(thinking) - _KEYS[kind]
    if extra:
        raise _bad(f"{kind} thinking takes no {', '.join(sorted(extra))}")
    if thinking.get("display", "summarized") not in _DISPLAYS:
        raise _bad(f"display must be {' or '.join(_DISPLAYS)}", "thinking.display")
    if kind == "disabled":
        return None
    if kind == "adaptive":
        return {"display": "summarized", **thinking}
    if adaptive_only:
        raise _bad("Claude Opus 4.7 and later think adaptively: send {type: adaptive}")
    budget = thinking.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < MIN_THINKING_BUDGET:
        raise _bad(
            f"must be an integer of at least {MIN_THINKING_BUDGET}", "thinking.budget_tokens"
        )
    if budget >= max_tokens:
        raise _bad(f"must be below max_tokens ({max_tokens})", "thinking.budget_tokens")
    return dict(thinking)
