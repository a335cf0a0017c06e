"""Structured outputs for an Anthropic-compatible upstream that lags the API (pure code).

Anthropic takes a JSON schema for the answer as `output_config.format` (and took it as the
top-level `output_format` under the `structured-outputs-2025-11-13` beta before that); proxies
and older Bedrock-style gateways that speak the Messages API may know only one of the two, or
neither, and refuse the other as an unknown field (a 400 naming it: gateway/refused_output.py).
`fit_output_fields` rewrites a request for the fields its upstream refused: the format goes
where the client (or the translation) put it, else in the other form, else into the system
prompt as an instruction (the model is still asked for the schema, it is only not enforced);
what else `output_config` holds (the effort) is left out with it. Neither field changes what a
call is billed beyond its tokens.
"""

from __future__ import annotations

import json
from typing import Any

JSON = dict[str, Any]
CURRENT, LEGACY = "output_config", "output_format"
OUTPUT_FIELDS = frozenset({CURRENT, LEGACY})
LEGACY_BETA = "structured-outputs-2025-11-13"


def fit_output_fields(payload: JSON, headers: dict[str, str], refused: frozenset[str]) -> JSON:
    """The payload (a new dict when it changes) without the refused output fields, its format
    kept in a form the upstream takes; `headers` get the legacy form's beta when it is used."""
    if not refused & OUTPUT_FIELDS or not OUTPUT_FIELDS & set(payload):
        return payload
    out = dict(payload)
    config, legacy = out.pop(CURRENT, None), out.pop(LEGACY, None)
    config = config if isinstance(config, dict) else {}
    rest = {k: v for k, v in config.items() if k != "format"}
    fmt = config.get("format") if "format" in config else legacy
    origin = CURRENT if "format" in config else LEGACY
    places = [p for p in (origin, LEGACY if origin == CURRENT else CURRENT) if p not in refused]
    place = places[0] if fmt is not None and places else None
    if CURRENT not in refused and (rest or place == CURRENT):
        out[CURRENT] = rest | ({"format": fmt} if place == CURRENT else {})
    if place == LEGACY:
        out[LEGACY] = fmt
        _add_beta(headers, LEGACY_BETA)
    elif place is None and isinstance(fmt, dict):
        out["system"] = _with_instruction(out.get("system"), fmt.get("schema"))
    return out


def _add_beta(headers: dict[str, str], beta: str) -> None:
    given = [b.strip() for b in headers.get("anthropic-beta", "").split(",") if b.strip()]
    if beta not in given:
        headers["anthropic-beta"] = ",".join([*given, beta])


def _with_instruction(system: Any, schema: Any) -> Any:
    """The system prompt with the schema asked for at its end (a string stays a string)."""
    text = (
        "Answer with one JSON value that matches this JSON Schema, and nothing else (no prose, "
        f"no code fence):\n{json.dumps(schema, separators=(',', ':'))}"
    )
    if isinstance(system, list):
        return [*system, {"type": "text", "text": text}]
    if isinstance(system, str) and system:
        return f"{system}\n\n{text}"
    return text
