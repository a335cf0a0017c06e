"""A Messages call's options toward an `openai` provider, checked as Anthropic checks them and
in its words, before any money is held: `temperature` and `top_p` (numbers from 0 to 1),
`stop_sequences` (an array of strings), `tool_choice` (an object of a documented type), `tools`
(an array; given with a `tool_choice`), `metadata` (an object, its `user_id` a string) and
`thinking` (an object, enabled with an integer `budget_tokens` from 1024 and below `max_tokens`,
disabled or adaptive). Unchecked, each was translated loosely: a string `stop_sequences` was
dropped (the answer ran on past it, and was charged), a string `tool_choice` too (tool use was
not forced), a `tool_choice` without tools as well, a temperature of 1.5 reached an upstream
whose range is 0..2, enabled thinking without a budget had one guessed. A count_tokens body
of such a model gets the checks of the fields it takes (`check_count_shapes`)."""

from __future__ import annotations

from typing import Any

from codelace_box.errors import InvalidRequest
from codelace_box.providers.anthropic_thinking import MIN_THINKING_BUDGET
from codelace_box.providers.base import JSON

TOOL_CHOICES = ("auto", "any", "tool", "none")
FORCED = ("any", "tool")  # a tool use forced without tools is refused; auto and none are dropped
THINKING_TYPES = ("enabled", "disabled", "adaptive")


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_request")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_unit(name: str, value: Any) -> None:
    if not _is_number(value):
        raise _bad(f"{name}: Input should be a valid number")
    if value < 0:
        raise _bad(f"{name}: Input should be greater than or equal to 0")
    if value > 1:
        raise _bad(f"{name}: Input should be less than or equal to 1")


def add_sampling(body: JSON, payload: JSON) -> None:
    """`payload` given the body's sampling options; 400 for one of the wrong type or range."""
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None:
            _check_unit(name, value)
            payload[name] = value
    stops = body.get("stop_sequences")
    if stops is None:
        return
    if not isinstance(stops, list) or not all(isinstance(stop, str) for stop in stops):
        raise _bad("stop_sequences: must be an array of strings")
    if stops:
        payload["stop"] = stops


def _check_tool_choice(choice: Any) -> None:
    if not isinstance(choice, dict):
        raise _bad("tool_choice: Input should be a valid dictionary")
    kind = choice.get("type")
    if kind not in TOOL_CHOICES:
        raise _bad("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    if kind == "tool" and not isinstance(choice.get("name"), str):
        raise _bad("tool_choice.tool.name: Field required")


def _check_metadata(metadata: Any) -> None:
    if not isinstance(metadata, dict):
        raise _bad("metadata: Input should be a valid dictionary")
    user_id = metadata.get("user_id")
    if user_id is not None and not isinstance(user_id, str):
        raise _bad("metadata.user_id: Input should be a valid string")


def _check_thinking(thinking: Any, max_tokens: Any) -> None:
    if not isinstance(thinking, dict):
        raise _bad("thinking: Input should be a valid dictionary")
    if thinking.get("type") not in THINKING_TYPES:
        raise _bad("thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'")
    if thinking["type"] == "enabled":
        _check_budget(thinking.get("budget_tokens"), max_tokens)


def _check_budget(budget: Any, max_tokens: Any) -> None:
    """Enabled thinking's `budget_tokens`: an integer from 1024, below `max_tokens`."""
    if budget is None:
        raise _bad("thinking.enabled.budget_tokens: Field required")
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise _bad("thinking.enabled.budget_tokens: Input should be a valid integer")
    if budget < MIN_THINKING_BUDGET:
        raise _bad(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to "
            f"{MIN_THINKING_BUDGET}"
        )
    # (not checked against max_tokens: with interleaved thinking, which Claude Code asks for,
    # Anthropic takes a budget past it, and the box may have lowered max_tokens to its cap)


def check_options(body: JSON, payload: JSON, call: bool = True) -> None:
    """A Messages body's options checked, and its sampling ones given to `payload` (a call);
    not a `call`: a count_tokens body, whose call-only fields (`metadata`, the sampling options)
    are not looked at."""
    if not call:
        check_count_shapes(body)
        return
    check_shapes(body)
    add_sampling(body, payload)  # (checked: 400 for a value of the wrong type or range)


def check_shapes(body: JSON) -> None:
    """400 for a `tool_choice`, `tools`, `metadata` or `thinking` of a shape Anthropic refuses
    (absent or null: not given), a tool use forced without tools (`auto` and `none` without
    them are dropped: an Anthropic client may send `none` on a call that has none), and
    enabled thinking without its budget."""
    check_count_shapes(body)
    if body.get("metadata") is not None:
        _check_metadata(body["metadata"])


def check_count_shapes(body: JSON) -> None:
    """check_shapes of the fields a count_tokens body takes too (`tools`, `tool_choice`,
    `thinking`; not `metadata`, which only a call has): the same 400s, in the same words."""
    if body.get("tools") is not None and not isinstance(body["tools"], list):
        raise _bad("tools: Input should be a valid list")
    if body.get("tool_choice") is not None:
        _check_tool_choice(body["tool_choice"])
        if not body.get("tools") and body["tool_choice"]["type"] in FORCED:
            raise _bad("tool_choice may only be specified while providing tools.")
    if body.get("thinking") is not None:
        _check_thinking(body["thinking"], body.get("max_tokens"))
