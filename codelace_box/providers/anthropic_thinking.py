"""A client's own thinking controls on /v1/chat/completions for Claude models (pure code).

LiteLLM users turn Claude's extended thinking on with Anthropic's own field beside the OpenAI
ones: `thinking: {"type": "enabled", "budget_tokens": N}` (or `adaptive`, or `disabled`). It
is checked here and sent as given (adaptive asks for the summarized text unless the client said
otherwise, as reasoning_effort does: reasoning_content needs it; display "updates" with the beta
Anthropic takes it under); what Anthropic would refuse is a 400 naming the field.
`reasoning_effort` is the OpenAI way to the same thing, and OpenRouter's `reasoning` object
(`effort`, `max_tokens`, `exclude`, `enabled`) a third: one of the three.
`native_reasoning` rewrites OpenRouter's object into the other two (its `effort` as
reasoning_effort, its `max_tokens` as a thinking budget, `enabled` alone as medium effort, as
OpenRouter documents), naming `reasoning.*` in its refusals; `reply_shape` says how the answer
shows the thinking (OpenRouter's clients read `reasoning`; `exclude: true` shows none).
"""

from __future__ import annotations

from typing import Any

from codelace_box.errors import InvalidRequest

JSON = dict[str, Any]

MIN_THINKING_BUDGET = 1024
# Share of max_tokens given to extended thinking per effort (OpenAI's reasoning_effort values,
# OpenRouter's reasoning.effort), as OpenRouter's reasoning tokens guide derives budget_tokens
# (minimal about 10%, low 20%, medium 50%, high 80%, xhigh 95%; OpenAI's `max`, which OpenRouter
# lacks, as xhigh); the budget is at least 1024 and at most 128000.
EFFORT_SHARE = {
    "minimal": 0.1, "low": 0.2, "medium": 0.5, "high": 0.8, "xhigh": 0.95, "max": 0.95,
}  # fmt: skip
_REASONING_KEYS = frozenset({"effort", "max_tokens", "exclude", "enabled"})
# How an answer shows the thinking: as LiteLLM does (reasoning_content, thinking_blocks), with
# OpenRouter's `reasoning` beside them, or not at all (OpenRouter's reasoning.exclude).
REPLY_DEFAULT, REPLY_OPENROUTER, REPLY_EXCLUDED = "reasoning_content", "reasoning", "excluded"
_KEYS = {"enabled": {"type", "budget_tokens", "display"}, "adaptive": {"type", "display"},
         "disabled": {"type"}}  # fmt: skip
_DISPLAYS = ("summarized", "omitted", "updates")
# Anthropic takes display "updates" (only the progress notes written between tool calls, the
# reasoning hidden) under this beta; this route forwards no beta of the client's: the box adds it.
DISPLAY_UPDATES_BETA = "thinking-display-updates-2026-08-18"


def _bad(message: str, param: str = "thinking") -> InvalidRequest:
    return InvalidRequest(f"{param}: {message}", param=param)


def thinking_field(body: JSON) -> str | None:
    """The field that turns thinking on ("reasoning", "reasoning_effort" or "thinking"), or None."""
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning_on(reasoning):
        return "reasoning"
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
    if not isinstance(kind, str) or kind not in _KEYS:  # (an array or object: no key of it)
        raise _bad("must be {type: enabled, budget_tokens}, {type: adaptive} or {type: disabled}")
    if body.get("reasoning_effort") not in (None, "none"):
        raise _bad("send either thinking or reasoning_effort, not both")
    extra = set(thinking) - _KEYS[kind]
    if extra:
        raise _bad(f"{kind} thinking takes no {', '.join(sorted(extra))}")
    if thinking.get("display", "summarized") not in _DISPLAYS:
        raise _bad(f"display must be {', '.join(_DISPLAYS[:-1])} or {_DISPLAYS[-1]}",
                   "thinking.display")  # fmt: skip
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


def add_display_beta(payload: JSON, headers: dict[str, str]) -> None:
    """`headers` get the beta of display "updates" when the Messages payload's thinking asks
    for it (a display billed as any other: no money-safety beta)."""
    thinking = payload.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("display") != "updates":
        return
    given = [flag.strip() for flag in headers.get("anthropic-beta", "").split(",") if flag.strip()]
    if DISPLAY_UPDATES_BETA not in given:
        headers["anthropic-beta"] = ",".join([*given, DISPLAY_UPDATES_BETA])


def reasoning_on(reasoning: JSON) -> bool:
    """Whether OpenRouter's `reasoning` object asks for thinking: `enabled` if given, else
    inferred from an effort (other than none) or a max_tokens."""
    if isinstance(reasoning.get("enabled"), bool):
        return bool(reasoning["enabled"]) and reasoning.get("effort") != "none"
    return reasoning.get("effort") not in (None, "none") or reasoning.get("max_tokens") is not None


def _is_effort(value: Any) -> bool:
    """Whether value names an effort (an array or object names none, and cannot be looked up)."""
    return isinstance(value, str) and value in EFFORT_SHARE


def _checked_reasoning(body: JSON) -> JSON:
    reasoning = body["reasoning"]
    if not isinstance(reasoning, dict):
        raise _bad("must be an object {effort, max_tokens, exclude, enabled}", "reasoning")
    extra = set(reasoning) - _REASONING_KEYS
    if extra:
        raise _bad(f"takes no {', '.join(sorted(extra))}", "reasoning")
    for name in ("exclude", "enabled"):
        if reasoning.get(name) is not None and not isinstance(reasoning[name], bool):
            raise _bad("must be true or false", f"reasoning.{name}")
    effort = reasoning.get("effort")
    if effort is not None and effort != "none" and not _is_effort(effort):
        raise _bad(f"must be one of none, {', '.join(EFFORT_SHARE)}", "reasoning.effort")
    if effort is not None and reasoning.get("max_tokens") is not None:
        raise _bad("send effort or max_tokens, not both", "reasoning")
    if body.get("reasoning_effort") is not None or body.get("thinking") is not None:
        raise _bad("send one of reasoning, reasoning_effort and thinking", "reasoning")
    return reasoning


def native_reasoning(body: JSON, max_tokens: int, adaptive_only: bool) -> JSON:
    """The body with OpenRouter's `reasoning` as reasoning_effort or thinking (as it was
    without one); a thinking budget is checked against the max_tokens that will be sent."""
    if body.get("reasoning") is None:
        return body
    reasoning = _checked_reasoning(body)
    out = {name: value for name, value in body.items() if name != "reasoning"}
    if not reasoning_on(reasoning):
        return out
    budget = reasoning.get("max_tokens")
    if budget is None:
        out["reasoning_effort"] = reasoning.get("effort") or "medium"  # OpenRouter's default
        if not adaptive_only and max_tokens <= MIN_THINKING_BUDGET:
            raise _bad(f"needs max_tokens above {MIN_THINKING_BUDGET} on Anthropic models",
                       "reasoning")  # fmt: skip
        return out
    if adaptive_only:
        raise _bad("Claude Opus 4.7 and later think adaptively: send reasoning.effort",
                   "reasoning.max_tokens")  # fmt: skip
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise _bad("must be a positive integer", "reasoning.max_tokens")
    budget = max(budget, MIN_THINKING_BUDGET)  # Anthropic's least budget, as OpenRouter sends it
    if budget >= max_tokens:
        raise _bad(f"must be below max_tokens ({max_tokens}), and at least "
                   f"{MIN_THINKING_BUDGET}", "reasoning.max_tokens")  # fmt: skip
    out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    return out


def reply_shape(body: JSON) -> str:
    """How the answer to this body shows Claude's thinking (REPLY_*)."""
    reasoning = body.get("reasoning")
    if not isinstance(reasoning, dict):
        return REPLY_DEFAULT
    return REPLY_EXCLUDED if reasoning.get("exclude") is True else REPLY_OPENROUTER
