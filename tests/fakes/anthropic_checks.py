"""Finer checks of the fake Anthropic API: message content, schema subset, metadata.user_id.

`schema_problem(schema, where)` words the first unsupported feature as Anthropic does, e.g.
"output_config.format.schema: For 'integer' type, property 'minimum' is not supported", or a
local `$ref` that names no definition of the schema (`$defs` or draft-07's `definitions`);
`user_id_problem(user_id)` refuses what Anthropic refuses (too long, an email, a phone number);
`content_problem(blocks, i, prefill)` blank text, a prefill's trailing space, thinking not first;
`manual_thinking_problem(model)` budget thinking on models that only think adaptively;
`adaptive_thinking_problem(model)` adaptive thinking on models from before it (Sonnet 4.5);
`sampling_problem(model, body)` temperature/top_p/top_k on models that took them out;
`cache_control_problem(body)` malformed or more than 4 prompt-cache breakpoints;
`output_config_problem(config, beta)` its effort, structured-output format and (under its beta)
task budget;
`message_fields_problem(message, i, beta)` a message's own fields (a mid-conversation system
message's per-message `output_config` under its beta);
`omits_thinking(body)` whether the answer's thinking blocks come without their text;
`thinking_display_problem(body, beta)` a thinking.display Anthropic refuses ("updates" only
under its beta).
"""

from __future__ import annotations

import re
from typing import Any

STRING_FORMATS = {
    "date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid",
}  # fmt: skip
UNSUPPORTED = {
    "integer": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"),
    "number": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"),
    "string": ("minLength", "maxLength"),
    "array": ("maxItems", "uniqueItems"),
}


def schema_problem(schema: Any, where: str) -> str | None:
    """The first feature outside the subset, or a `$ref` the schema cannot resolve, or None."""
    return _subset_problem(schema, where) or _unresolved_ref(schema, schema, where)


def _unresolved_ref(root: Any, node: Any, where: str) -> str | None:
    """A local `$ref` (`#/...`) somewhere in `node` that points at nothing in `root`."""
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    ref = node.get("$ref") if isinstance(node, dict) else None
    if isinstance(ref, str) and ref.startswith("#"):
        target = root
        for token in filter(None, ref[1:].split("/")):
            target = target.get(token) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            return f"{where}: $ref '{ref}' could not be resolved"
    return next((p for c in children if (p := _unresolved_ref(root, c, where))), None)


def _subset_problem(schema: Any, where: str) -> str | None:
    """The first feature outside the subset, or None."""
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    for name in UNSUPPORTED.get(kind, ()) if isinstance(kind, str) else ():
        if name in schema:
            return f"{where}: For '{kind}' type, property '{name}' is not supported"
    if kind == "string" and "format" in schema and schema["format"] not in STRING_FORMATS:
        return f"{where}: For 'string' type, format '{schema['format']}' is not supported"
    if kind == "array" and schema.get("minItems", 0) not in (0, 1):
        return f"{where}: For 'array' type, 'minItems' values other than 0 or 1 are not supported"
    if kind == "object" and schema.get("additionalProperties", False) is not False:
        return f"{where}: For 'object' type, 'additionalProperties' must be explicitly set to false"
    return _nested_problem(schema, where)


def _nested_problem(schema: dict[str, Any], where: str) -> str | None:
    subschemas: list[Any] = []
    for key in ("properties", "$defs", "definitions"):
        if isinstance(schema.get(key), dict):
            subschemas += schema[key].values()
    for key in ("anyOf", "allOf", "oneOf"):
        if isinstance(schema.get(key), list):
            subschemas += schema[key]
    if "items" in schema:
        subschemas.append(schema["items"])
    for sub in subschemas:
        problem = _subset_problem(sub, where)
        if problem:
            return problem
    return None


# A phone number stands alone: digits inside a hex id or a uuid (Claude Code sends a JSON
# user_id with both) are not one, whole groups of digits in a uuid included (7000-4090-9105).
_PHONE_RE = re.compile(r"(?<![0-9A-Za-z])\+?\d[\d ().-]{8,}\d(?![0-9A-Za-z])")
_UUID_RE = re.compile(r"[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}")


def user_id_problem(user_id: Any) -> str | None:
    """Anthropic's refusal of a metadata.user_id, or None."""
    if user_id is None:
        return None
    if not isinstance(user_id, str) or len(user_id) > 256:
        return "metadata.user_id: String should have at most 256 characters"
    if "@" in user_id:
        return (
            "metadata.user_id: user_id appears to contain an email address. "
            "Please send a uuid or hash value instead."
        )
    if _PHONE_RE.search(_UUID_RE.sub("", user_id)) and not re.fullmatch(r"[0-9a-f-]{32,}", user_id):
        return (
            "metadata.user_id: user_id appears to contain a phone number. "
            "Please send a uuid or hash value instead."
        )
    return None


def content_problem(blocks: list[dict[str, Any]], i: int, prefill: bool) -> str | None:
    """Anthropic's refusal of one message's (well-formed) content blocks, or None."""
    texts = [b["text"] for b in blocks if b.get("type") == "text"]
    if any(not t.strip() for t in texts) and all(not t.strip() for t in texts):
        return "messages: text content blocks must contain non-whitespace text"
    last = blocks[-1] if blocks else {}
    if prefill and last.get("type") == "text" and last["text"] != last["text"].rstrip():
        return "messages: final assistant content cannot end with trailing whitespace"
    kinds = [b.get("type") for b in blocks]
    thinking = {"thinking", "redacted_thinking"}
    if thinking & set(kinds) and kinds[0] not in thinking:
        return (
            f"messages.{i}.content.0: If an assistant message contains any thinking blocks, "
            f"the first block must be `thinking` or `redacted_thinking`. Found `{kinds[0]}`."
        )
    return None


# An image's first bytes in base64, and the format they open (WEBP: RIFF, a size, "WEBP")
_IMAGE_STARTS = (("iVBORw0KGgo", "image/png"), ("/9j/", "image/jpeg"), ("R0lGOD", "image/gif"))


def _image_format(data: str) -> str | None:
    for start, media_type in _IMAGE_STARTS:
        if data.startswith(start):
            return media_type
    return "image/webp" if data.startswith("UklGR") and data[12:16] == "RUJQ" else None


def media_problem(body: Any) -> str | None:
    """Anthropic's refusal of a base64 image whose bytes open another format than its
    media_type names ("Image does not match the provided media type image/png"), or None
    (bytes of no format it knows are left to the other checks)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for i, message in enumerate(messages if isinstance(messages, list) else []):
        content = message.get("content") if isinstance(message, dict) else None
        for j, block in enumerate(content if isinstance(content, list) else []):
            inner = block.get("content") if isinstance(block, dict) else None
            for source in _image_sources(block, inner):
                data, declared = source.get("data"), source.get("media_type")
                found = _image_format(data) if isinstance(data, str) else None
                if found is not None and found != declared:
                    return (
                        f"messages.{i}.content.{j}.image.source.base64.data: Image does not "
                        f"match the provided media type {declared}"
                    )
    return None


def _image_sources(block: Any, inner: Any) -> list[dict[str, Any]]:
    """The base64 sources of an image block, or of the images in a tool result's content."""
    blocks = [block, *(inner if isinstance(inner, list) else [])]
    return [
        b["source"]
        for b in blocks
        if isinstance(b, dict)
        and b.get("type") == "image"
        and isinstance(b.get("source"), dict)
        and b["source"].get("type") == "base64"
    ]


def claude_version(model: str) -> tuple[int, int] | None:
    """(major, minor) of a Claude model id: claude-opus-4-7 -> (4, 7), claude-sonnet-5 -> (5, 0),
    claude-3-7-sonnet-20250219 -> (3, 7); None when the id carries no version."""
    match = re.search(r"(?:^|[-.])(\d{1,2})(?:[-.](\d{1,2}))?(?=$|[-.@:])", model)
    return (int(match[1]), int(match[2] or 0)) if match else None


def manual_thinking_problem(model: str) -> str | None:
    """Claude Opus 4.7 and later refuse thinking.type "enabled" (budget_tokens)."""
    version = claude_version(model)
    if version is not None and version >= (4, 7):
        return (
            '"thinking.type.enabled" is not supported for this model. Use '
            '"thinking.type.adaptive" and "output_config.effort" to control thinking behavior.'
        )
    return None


def adaptive_thinking_problem(model: str) -> str | None:
    """Claude models before 4.6 (Sonnet 4.5, Opus 4.5 and older) refuse thinking.type
    "adaptive": they take only "enabled" (budget_tokens) and "disabled"."""
    version = claude_version(model)
    if version is not None and version < (4, 6):
        return (
            "thinking: Input tag 'adaptive' found using 'type' does not match any of the "
            "expected tags: 'disabled', 'enabled'"
        )
    return None


def sampling_problem(model: str, body: dict[str, Any]) -> str | None:
    """Claude Opus 4.7 and later refuse any temperature, top_p or top_k (sampling was removed):
    Anthropic answers `temperature` is deprecated for this model."""
    version = claude_version(model)
    if version is None or version < (4, 7):
        return None
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            return f"`{name}` is deprecated for this model."
    return None


MAX_CACHE_BREAKPOINTS = 4


def _blocks_of(body: dict[str, Any]) -> list[Any]:
    """Every block that may carry cache_control: system, message content (tool results' inner
    content too) and tools."""
    system = body.get("system")
    blocks: list[Any] = list(system) if isinstance(system, list) else []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else []:
            blocks.append(block)
            inner = block.get("content") if isinstance(block, dict) else None
            blocks += inner if isinstance(inner, list) else []
    return blocks + list(body.get("tools") or [])


def cache_control_problem(body: dict[str, Any]) -> str | None:
    """Anthropic's refusal of the request's cache_control breakpoints, or None."""
    blocks = [b for b in _blocks_of(body) if isinstance(b, dict)]
    found = [b["cache_control"] for b in blocks if "cache_control" in b]
    for control in found:
        if (
            not isinstance(control, dict)
            or control.get("type") != "ephemeral"
            or set(control) - {"type", "ttl"}
            or control.get("ttl", "5m") not in ("5m", "1h")
        ):
            return "cache_control: Input should be {type: 'ephemeral', ttl?: '5m' | '1h'}"
    if len(found) > MAX_CACHE_BREAKPOINTS:
        return (
            f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {len(found)}."
        )
    return None


# The betas under which a mid-conversation system message may carry `output_config` (per-message
# effort): the documented name, and the one Claude Code (2.1.26x on) sends, which the API takes
# too.
PER_MESSAGE_BETAS = ("mid-conversation-output-config-", "per-turn-control-")
EFFORTS = (None, "low", "medium", "high", "xhigh", "max")
EFFORT_WORDS = ("'low'", "'medium'", "'high'", "'xhigh'", "'max'")


def message_fields_problem(message: dict[str, Any], i: int, beta: str) -> str | None:
    """Anthropic's refusal of a message's fields beyond role and content, or None: only a
    `role: "system"` message takes `output_config` ({effort} alone: format stays top-level),
    and only under a per-message beta (without it: "Extra inputs are not permitted")."""
    flags = [flag.strip().lower() for flag in beta.split(",")]
    per_message = any(f.startswith(PER_MESSAGE_BETAS) for f in flags)
    allowed = {"role", "content"}
    if per_message and message.get("role") == "system":
        allowed.add("output_config")
    extra = set(message) - allowed
    if extra:
        return f"messages.{i}.{sorted(extra)[0]}: Extra inputs are not permitted"
    config = message.get("output_config")
    if "output_config" not in message:
        return None
    if not isinstance(config, dict):
        return f"messages.{i}.output_config: Input should be a valid dictionary"
    extra = set(config) - {"effort"}
    if extra:
        return f"messages.{i}.output_config.{sorted(extra)[0]}: Extra inputs are not permitted"
    if config.get("effort") not in EFFORTS:
        return f"messages.{i}.output_config.effort: Input should be {', '.join(EFFORT_WORDS)}"
    return None


TASK_BUDGETS_BETA = "task-budgets-2026-03-13"


def _task_budget_problem(budget: Any) -> str | None:
    """Anthropic's refusal of an output_config.task_budget ({type: "tokens", total, and
    remaining when carried over a compaction}), or None (None when there is none)."""
    where = "output_config.task_budget"
    if budget is None:
        return None
    if not isinstance(budget, dict):
        return f"{where}: Input should be a valid dictionary"
    extra = set(budget) - {"type", "total", "remaining"}
    if extra:
        return f"{where}.{sorted(extra)[0]}: Extra inputs are not permitted"
    if budget.get("type") != "tokens":
        return f"{where}.type: Input should be 'tokens'"
    for field in ("total", "remaining"):
        value = budget.get(field)
        if (field == "total" or value is not None) and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            return f"{where}.{field}: Input should be a non-negative integer"
    return None


def output_config_problem(config: Any, beta: str = "") -> str | None:
    """Anthropic's refusal of an output_config (effort, format and its schema, and under the
    task-budgets beta a task_budget, which Claude Code sends), or None."""
    if config is None:
        return None
    if not isinstance(config, dict):
        return "output_config: Input should be a valid dictionary"
    flags = [flag.strip().lower() for flag in beta.split(",")]
    known = {"format", "effort"} | ({"task_budget"} if TASK_BUDGETS_BETA in flags else set())
    extra = set(config) - known
    if extra:
        return f"output_config.{sorted(extra)[0]}: Extra inputs are not permitted"
    if config.get("effort") not in EFFORTS:
        return "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"
    return _task_budget_problem(config.get("task_budget")) or _format_problem(config)


def _format_problem(config: dict[str, Any]) -> str | None:
    fmt = config.get("format")
    if fmt is not None and (
        not isinstance(fmt, dict)
        or fmt.get("type") != "json_schema"
        or not isinstance(fmt.get("schema"), dict)
    ):
        return "output_config.format: expected {type: json_schema, schema: {...}}"
    return schema_problem(fmt["schema"], "output_config.format.schema") if fmt else None


def omits_thinking(body: Any) -> bool:
    """Claude Opus 4.7 and later leave the text out of thinking blocks (only the signature
    comes) unless the request asks for thinking.display "summarized"."""
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return False
    version = claude_version(body["model"])
    thinking = body.get("thinking")
    display = thinking.get("display") if isinstance(thinking, dict) else None
    return version is not None and version >= (4, 7) and display != "summarized"


DISPLAY_UPDATES_BETA = "thinking-display-updates-2026-08-18"


def thinking_display_problem(body: Any, beta: str) -> str | None:
    """A `thinking.display` Anthropic refuses, worded as it does: anything but summarized or
    omitted (or none), "updates" too unless the request carries its beta."""
    thinking = body.get("thinking") if isinstance(body, dict) else None
    display = thinking.get("display") if isinstance(thinking, dict) else None
    flags = [flag.strip().lower() for flag in beta.split(",")]
    allowed = ["summarized", "omitted", *(["updates"] if DISPLAY_UPDATES_BETA in flags else [])]
    if display is None or display in allowed:
        return None
    assert isinstance(thinking, dict)
    return f"thinking.{thinking.get('type')}.display: Input should be " + " or ".join(
        repr(value) for value in allowed
    )


def clear_thinking_problem(body: dict[str, Any]) -> str | None:
    """Anthropic's refusal of a `clear_thinking_*` context edit (Claude Code sends
    `clear_thinking_20251015` with thinking on) in a request without thinking, or None."""
    management = body.get("context_management")
    edits = management.get("edits") if isinstance(management, dict) else None
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        return None
    for edit in edits if isinstance(edits, list) else []:
        kind = edit.get("type") if isinstance(edit, dict) else None
        if isinstance(kind, str) and kind.startswith("clear_thinking"):
            return f"`{kind}` strategy requires `thinking` to be enabled or adaptive"
    return None
