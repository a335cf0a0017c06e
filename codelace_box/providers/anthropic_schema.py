"""JSON schemas for Anthropic's structured outputs: OpenAI schemas made to fit its subset.

Anthropic's `output_config.format` and strict tools take only a subset of JSON Schema and
answer 400 to the rest (e.g. "For 'integer' type, property 'minimum' is not supported"),
where OpenAI takes them. Like Anthropic's own SDK (`transform_schema`), every object gets
`additionalProperties: false`, and what the subset lacks (numeric and length bounds, patterns,
unknown string formats, minItems above 1, ...) moves into the description, so the model still
reads it. Definitions (`$defs`, draft-07's `definitions`) are fitted in place, where the
schema's `$ref`s find them. Pure code.
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]

STRING_FORMATS = {
    "date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid",
}  # fmt: skip
_DROPPED = ("$schema", "$id")
# Where local `$ref`s point: `$defs`, and draft-07's `definitions` (the openai Node SDK's zod
# helpers, Pydantic v1), which Anthropic takes too.
_DEFINITIONS = ("$defs", "definitions")


def _primitive(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def strict_schema(schema: Any) -> Any:
    """The schema rewritten to Anthropic's subset (anything not a dict is left alone)."""
    if not isinstance(schema, dict):
        return schema
    rest = {k: v for k, v in schema.items() if k not in _DROPPED}
    out: JSON = {}
    for key in _DEFINITIONS:  # before the `$ref` return: a root `$ref` keeps what it names
        defs = rest.pop(key, None)
        if isinstance(defs, dict):
            out[key] = {name: strict_schema(sub) for name, sub in defs.items()}
    if "$ref" in rest:
        out["$ref"] = rest.pop("$ref")
        return out
    kind = rest.pop("type", None)
    literal = _literals(rest, out)
    for key in ("description", "title"):
        if key in rest:
            out[key] = rest.pop(key)
    if isinstance(kind, list):  # e.g. ["string", "null"]: one branch per type
        out["anyOf"] = [
            {"type": "null"} if k == "null" else strict_schema({**rest, "type": k}) for k in kind
        ]
        return out
    if not _combinators(rest, out) and not literal:
        if kind is None:
            return schema  # nothing to narrow: let the API judge it
        out["type"] = kind
    if not literal:
        _typed(kind, rest, out)
    _describe_leftovers(rest, out)
    return out


def _literals(rest: JSON, out: JSON) -> bool:
    enum = rest.get("enum")
    if isinstance(enum, list) and enum and all(_primitive(v) for v in enum):
        out["enum"] = rest.pop("enum")
    if "const" in rest and _primitive(rest["const"]):
        out["const"] = rest.pop("const")
    return "enum" in out or "const" in out


def _combinators(rest: JSON, out: JSON) -> bool:
    any_of = rest.pop("anyOf", None)
    one_of = rest.pop("oneOf", None)
    all_of = rest.pop("allOf", None)
    if isinstance(any_of, list) or isinstance(one_of, list):
        variants = any_of if isinstance(any_of, list) else one_of
        out["anyOf"] = [strict_schema(v) for v in variants or []]
    elif isinstance(all_of, list):
        out["allOf"] = [strict_schema(v) for v in all_of]
    else:
        return False
    return True


def _typed(kind: Any, rest: JSON, out: JSON) -> None:
    """The keywords of one type that the subset keeps (the rest stays in `rest`)."""
    if kind == "object":
        properties = rest.pop("properties", {})
        if isinstance(properties, dict):
            out["properties"] = {k: strict_schema(v) for k, v in properties.items()}
        rest.pop("additionalProperties", None)
        out["additionalProperties"] = False
        if "required" in rest:
            out["required"] = rest.pop("required")
    elif kind == "string":
        if isinstance(rest.get("format"), str) and rest["format"] in STRING_FORMATS:
            out["format"] = rest.pop("format")
    elif kind == "array":
        if "items" in rest:
            out["items"] = strict_schema(rest.pop("items"))
        if rest.get("minItems") in (0, 1):
            out["minItems"] = rest.pop("minItems")


def _describe_leftovers(rest: JSON, out: JSON) -> None:
    if not rest:
        return
    listed = "{" + ", ".join(f"{key}: {value}" for key, value in rest.items()) + "}"
    description = out.get("description")
    out["description"] = f"{description}\n\n{listed}" if description is not None else listed
