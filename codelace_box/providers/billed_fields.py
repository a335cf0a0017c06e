"""Request fields that make a provider bill beyond the model's token prices.

The user is charged the catalog price; a field that buys fallbacks to other models, paid
plugins, web search or a pricier service tier would make the operator pay the difference. Such a
field is refused with a 400 naming it unless the operator allowed it for the provider
(`providers add/update NAME --allow-field FIELD`). BILLED_FIELDS is the one list: the routes
still to come (/v1/messages: server tools, long-context betas) extend it here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from codelace_box.errors import InvalidRequest

# field -> what it buys at the provider (shown in the refusal and the README)
BILLED_FIELDS: dict[str, str] = {
    "models": "fallbacks to other models, at their prices",
    "route": "fallback routing to other models",
    "plugins": "paid plugins (web search, PDF/OCR parsing)",
    "provider": "provider routing, possibly to pricier providers",
    "transforms": "prompt transforms",
    "web_search_options": "paid web search",
    "service_tier": "a pricier service tier (only auto and default pass)",
}
# Values of a field that buy nothing extra.
FREE_VALUES: dict[str, frozenset[Any]] = {"service_tier": frozenset({"auto", "default"})}


def is_billed_field(name: str) -> bool:
    """Whether the operator can allow this field (it is one of BILLED_FIELDS)."""
    return name in BILLED_FIELDS


def _present(name: str, value: Any) -> bool:
    if value is None or value in ([], {}):
        return False
    free = FREE_VALUES.get(name, frozenset())
    return not (isinstance(value, str) and value in free)


def check_billed_fields(body: dict[str, Any], allowed: Iterable[str], model: str) -> None:
    """400 `field_not_allowed` for the first billed field the provider does not allow."""
    permitted = set(allowed)
    for name, buys in BILLED_FIELDS.items():
        if name in permitted or not _present(name, body.get(name)):
            continue
        raise InvalidRequest(
            f"{name} is not allowed for {model}: it makes the provider bill beyond the "
            f"model's price ({buys}); the operator may allow it for this provider",
            code="field_not_allowed",
            param=name,
        )
