"""Anthropic's structured outputs as an OpenAI model's `response_format` (pure code).

A Messages body asks for JSON in a schema with `output_config.format` (what the anthropic
SDK's `messages.parse(output_format=...)` sends) or the older top-level `output_format`, both
`{"type": "json_schema", "schema": {...}}`. An OpenAI model gets it as a json_schema
`response_format`, strict (the answer is then held to the schema, as Anthropic holds it) where
OpenAI's strict mode takes the schema: every object lists all its properties in `required`
and allows no additional ones. Anthropic takes optional properties, which OpenAI's strict mode
refuses with a 400 ("Invalid schema for response_format"): such a schema goes without strict.
"""

from __future__ import annotations

import re
from typing import Any

from codelace_box.errors import InvalidRequest
from codelace_box.providers.base import JSON

_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")  # OpenAI's json_schema.name


def _asked_format(body: JSON) -> Any:
    config = body.get("output_config")
    given = config.get("format") if isinstance(config, dict) else None
    return given if given is not None else body.get("output_format")


def response_format(body: JSON) -> JSON | None:
    """OpenAI's `response_format` for a Messages body's output format; None when it asks none."""
    form = _asked_format(body)
    if form is None:
        return None
    schema = form.get("schema") if isinstance(form, dict) else None
    if not isinstance(form, dict) or form.get("type") != "json_schema":
        raise InvalidRequest('output_config.format: type must be "json_schema"',
                             code="invalid_request")  # fmt: skip
    if not isinstance(schema, dict):
        raise InvalidRequest("output_config.format.schema: must be an object",
                             code="invalid_request")  # fmt: skip
    title = schema.get("title")
    name = title if isinstance(title, str) and _NAME_RE.fullmatch(title) else "output"
    spec = {"name": name, "schema": schema, "strict": strict_ready(schema)}
    return {"type": "json_schema", "json_schema": spec}


def _is_text(value: Any) -> bool:
    return isinstance(value, str)  # (a required entry that is an array or object names nothing)


def strict_ready(schema: Any) -> bool:
    """Whether OpenAI's strict mode takes the schema: each object (at any depth) requires
    every one of its properties and sets additionalProperties false."""
    if isinstance(schema, list):
        return all(strict_ready(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    if schema.get("type") == "object" or isinstance(schema.get("properties"), dict):
        properties = schema.get("properties")
        names = list(properties) if isinstance(properties, dict) else []
        required = schema.get("required")
        listed = set(filter(_is_text, required)) if isinstance(required, list) else set()
        if schema.get("additionalProperties") is not False or set(names) - listed:
            return False
    return all(strict_ready(value) for value in schema.values() if isinstance(value, dict | list))
