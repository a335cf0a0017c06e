"""Anthropic's advisor server tool: the advisor model's catalog route, its hold and its charge.

A tool `{"type": "advisor_...", "model": "claude-opus-4-6", ...}` in a Messages body has the
requested model (the executor) consult that advisor model inside the one call. Anthropic
reports each advisor call in `usage.iterations` (an `advisor_message` with its own counts) and
bills it at the advisor model's rates. So the box charges it at the advisor's own catalog
prices: admission finds the catalog model of the request's provider whose upstream name is the
tool's `model` (compared in composed Unicode form), and refuses the call (400) without one; the
key's allow-list must name it (403, as for the requested model); the hold covers the advisor's
tokens at its prices (gateway/extra_samplings.py counts them); the settlement prices its
iterations at them and the usage row records them (`AdvisorCharge`). Everything else in the
call is charged at the requested model's prices, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codelace_box.db.text import composed
from codelace_box.errors import InvalidRequest
from codelace_box.gateway.routing import ModelRoute, RouteTable
from codelace_box.money import token_cost_nanos
from codelace_box.providers.base import AdvisorTokens

ADVISOR_PREFIX = "advisor_"  # the tool's dated type: advisor_20260301


@dataclass
class AdvisorCharge:
    """An advisor model's tokens in one call (parts of the call's counts) and the catalog
    prices (nano-USD per 1M tokens) they are charged at, as the usage row records them."""

    model: str  # its catalog id
    input_per_1m_nanos: int
    output_per_1m_nanos: int
    cache_read_per_1m_nanos: int
    cache_write_per_1m_nanos: int
    cache_write_1h_per_1m_nanos: int
    tokens: AdvisorTokens = field(default_factory=AdvisorTokens)

    def priced(self) -> tuple[tuple[int, int], ...]:
        """Its (token count, price) pairs: uncached input, output, cache reads, 5-minute cache
        writes, 1-hour cache writes."""
        t = self.tokens
        uncached = t.input_tokens - t.cache_read_tokens - t.cache_write_tokens
        return (
            (uncached, self.input_per_1m_nanos),
            (t.output_tokens, self.output_per_1m_nanos),
            (t.cache_read_tokens, self.cache_read_per_1m_nanos),
            (t.cache_write_tokens - t.cache_write_1h_tokens, self.cache_write_per_1m_nanos),
            (t.cache_write_1h_tokens, self.cache_write_1h_per_1m_nanos),
        )


def advisor_charge(advisor: ModelRoute, tokens: AdvisorTokens | None) -> AdvisorCharge:
    """What a call's advisor tokens are charged at: its catalog model's prices."""
    return AdvisorCharge(
        model=advisor.id,
        input_per_1m_nanos=advisor.input_per_1m_nanos,
        output_per_1m_nanos=advisor.output_per_1m_nanos,
        cache_read_per_1m_nanos=advisor.cache_read_per_1m_nanos,
        cache_write_per_1m_nanos=advisor.cache_write_per_1m_nanos,
        cache_write_1h_per_1m_nanos=advisor.cache_write_1h_per_1m_nanos,
        tokens=tokens or AdvisorTokens(),
    )


def advisor_hold(advisor: ModelRoute, read: int, written: int) -> int:
    """The worst case of the advisor's calls: the tokens they may read at its dearest input
    price (a cache write may cost more than input), those they may write at its output
    price (extra_samplings.advisor_tokens gives both)."""
    return token_cost_nanos(
        read, written, advisor.max_input_per_1m_nanos, advisor.output_per_1m_nanos
    )


def advisor_tools(body: dict[str, Any]) -> list[tuple[int, Any]]:
    """Each advisor tool of a body's `tools` (its type in any case, as billed_fields reads
    it): its index and its `model`."""
    tools = body.get("tools")
    return [
        (index, tool.get("model"))
        for index, tool in enumerate(tools if isinstance(tools, list) else ())
        if isinstance(tool, dict)
        and isinstance(tool.get("type"), str)
        and tool["type"].lower().startswith(ADVISOR_PREFIX)
    ]


def advisor_route(routes: RouteTable, route: ModelRoute, body: dict[str, Any]) -> ModelRoute | None:
    """The catalog model the advisor tools of a body consult (None: no advisor tool); 400
    for an advisor model the operator has not put in the catalog (or disabled) for the
    request's provider, and for tools naming two different ones (a call is charged at one
    advisor's prices)."""
    found: ModelRoute | None = None
    for index, name in advisor_tools(body):
        where = f"tools.{index}.model"
        if not isinstance(name, str) or not name.strip():
            raise InvalidRequest(f"{where}: the advisor tool needs a model name", param=where)
        advisor = catalog_advisor(routes, route, name)
        if advisor is None:
            raise not_in_catalog(route, name, where)
        if found is not None and advisor.id != found.id:
            raise InvalidRequest(
                f"{where}: one advisor model per request ({found.upstream_model} and {name})",
                param=where,
            )
        found = advisor
    return found


def catalog_advisor(routes: RouteTable, route: ModelRoute, name: str) -> ModelRoute | None:
    """The enabled catalog model of the request's provider whose upstream name is `name`: the
    one whose id is `<provider>/<name>` if several are, else the first by id."""
    wanted = composed(name)
    found = [
        model
        for model in routes.enabled_models()
        if model.provider.id == route.provider.id and composed(model.upstream_model) == wanted
    ]
    default_id = composed(f"{route.provider.name}/{name}")
    return next((m for m in found if composed(m.id) == default_id), found[0] if found else None)


def not_in_catalog(route: ModelRoute, name: str, where: str) -> InvalidRequest:
    """The 400 of an advisor model with no enabled catalog model to charge its calls at."""
    provider = route.provider.name
    return InvalidRequest(
        f"{where}: the advisor model {name!r} is not in this box's catalog for the provider "
        f"{provider}, so its calls have no price: the operator must add it to the catalog "
        f"(codelace-box models set {provider}/{name} --provider {provider} --upstream-model "
        f"{name} ...) before it can advise",
        code="advisor_not_in_catalog",
        param=where,
    )
