"""Server-side safeguards of the fake Anthropic API: Claude Code's auto mode classifier.

Claude Code (2.1.278 on) in auto mode asks the API to judge its tool calls inside the session's
own requests: a top-level `safeguards` list (`[{"type": "dangerous_tool_use",
"classifier_context": {...}}]`) under the beta `dangerous-tool-use-2026-09-03`. The API answers
`safeguard_results`, a verdict per tool_use of the answer (`message_delta.delta` when streamed,
top-level otherwise). With no results in a completed answer, Claude Code takes it that something
on the path dropped them and classifies locally for the rest of the session (its own requests,
billed, after a notice that holds the first such action). Without the beta the field is an
unknown one ("Extra inputs are not permitted"), as the API has it.

`safeguards_problem(body, beta)` the refusal of a body's `safeguards`, or None;
`safeguard_results(body, tool_use_ids)` what to answer (None: the request asked for nothing).
"""

from __future__ import annotations

from typing import Any

SAFEGUARDS_BETA = "dangerous-tool-use-"
SAFEGUARD_TYPES = frozenset({"dangerous_tool_use"})


def safeguards_problem(body: dict[str, Any], beta: str) -> str | None:
    """Anthropic's refusal of the body's `safeguards` (absent: None)."""
    if "safeguards" not in body:
        return None
    flags = [flag.strip().lower() for flag in beta.split(",")]
    if not any(flag.startswith(SAFEGUARDS_BETA) for flag in flags):
        return "safeguards: Extra inputs are not permitted"
    safeguards = body["safeguards"]
    if not isinstance(safeguards, list):
        return "safeguards: Input should be a valid list"
    problems = (_safeguard_problem(safeguard, f"safeguards.{i}")
                for i, safeguard in enumerate(safeguards))  # fmt: skip
    return next((problem for problem in problems if problem), None)


def _safeguard_problem(safeguard: Any, where: str) -> str | None:
    if not isinstance(safeguard, dict) or safeguard.get("type") not in SAFEGUARD_TYPES:
        return f"{where}.type: Input should be 'dangerous_tool_use'"
    extra = set(safeguard) - {"type", "classifier_context"}
    if extra:
        return f"{where}.{sorted(extra)[0]}: Extra inputs are not permitted"
    if not isinstance(safeguard.get("classifier_context", {}), dict):
        return f"{where}.classifier_context: Input should be a valid dictionary"
    return None


def safeguard_results(body: Any, tool_use_ids: list[str]) -> list[dict[str, Any]] | None:
    """The verdicts for an answer's tool calls (each judged not flagged) when the request asked
    for them, else None."""
    if not isinstance(body, dict) or not body.get("safeguards"):
        return None
    verdicts = {i: {"type": "evaluated", "outcome": "not_flagged"} for i in tool_use_ids}
    status = {"type": "available", "tool_uses": verdicts}
    return [{"type": "dangerous_tool_use", "status": status}]
