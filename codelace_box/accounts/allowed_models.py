"""A key's allow-list of models at a call: the routed model on it, and no field or tool of the
body that lets the provider answer with other models (403 `model_not_allowed`)."""

from __future__ import annotations

from typing import Any

from codelace_box.errors import PermissionDenied
from codelace_box.providers.server_tools import other_model_tools


def check_model_allowed(allowed: frozenset[str] | None, model_id: str) -> None:
    """403 `model_not_allowed` when a key's allow-list (catalog ids) lacks the routed model."""
    if allowed is not None and model_id not in allowed:
        raise PermissionDenied(
            f"this API key may not call {model_id}: it is limited to {', '.join(sorted(allowed))}",
            code="model_not_allowed",
        )


# Fields that let a provider answer with other models than the one asked for (OpenRouter's
# fallbacks and presets, LiteLLM's and Anthropic's `fallbacks`, LiteLLM's context-window and
# content-policy fallbacks, where the operator allowed them: providers/billed_fields.py).
OTHER_MODEL_FIELDS = ("models", "route", "preset", "fallbacks", "context_window_fallbacks",
                      "content_policy_fallbacks", "context_window_fallback_dict")  # fmt: skip


def check_no_other_models(body: dict[str, Any], allowed: frozenset[str] | None) -> None:
    """403 `model_not_allowed` when a key limited to some models asks the provider for
    others (a field, or a gateway tool that runs another model)."""
    if allowed is None:
        return
    sent = [name for name in OTHER_MODEL_FIELDS if body.get(name) not in (None, "", [], {})]
    for name in [*sent, *other_model_tools(body)]:  # a tool by its place: tools[0]
        raise PermissionDenied(
            f"{name} is not allowed with this API key: it lets the provider answer with "
            f"other models, and the key is limited to {', '.join(sorted(allowed))}",
            code="model_not_allowed",
        )
