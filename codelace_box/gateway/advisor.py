"""Anthropic's advisor server tool: the advisor model's catalog route, its hold and its charge.

A tool `{"type": "advisor_...", "model": "claude-opus-4-6", ...}` in a Messages body has the
requested model (the executor) consult that advisor model inside the one call. Anthropic
reports each advisor call in `usage.iterations` (an `advisor_message` with its own counts) and
bills it at the advisor model's rates. So the box charges it at the advisor's own catalog
prices: admission finds the catalog model of the request's provider whose upstream name is the
tool's `model` (compared in composed Unicode form), and refuses the call (400) without one; the
key's allow-list must name it (403, as for the requested model); the hold covers the advisor's
tokens (gateway/extra_samplings.py counts them); the settlement prices its iterations at its
prices and the usage row records them (`AdvisorCharge`). Everything else in the call is charged
at the requested model's prices, as before.

Each `advisor_message` names the model that ran it. One other than the tool's (a dated id of
it, `claude-opus-4-6-20260101` for `claude-opus-4-6`, is the same model) was billed by the
provider at rates the box cannot be sure of: the call's advisor tokens are then charged at the
dearer of the advisor's and the requested model's prices, kind by kind, and a warning names the
request and both models; the answered call is never failed for it. The hold covers the advisor
at those dearer prices, so such a charge stays within it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from codelace_box.crypto import mask_tokens
from codelace_box.db.text import composed
from codelace_box.errors import InvalidRequest
from codelace_box.gateway.routing import ModelRoute, RouteTable
from codelace_box.money import token_cost_nanos
from codelace_box.providers.base import AdvisorTokens

ADVISOR_PREFIX = "advisor_"  # the tool's dated type: advisor_20260301
_SNAPSHOT = re.compile(r"(.+)-(\d{8}|latest)")  # a model id's date (or -latest) suffix
log = logging.getLogger("codelace_box.gateway")


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


def _prices(*models: ModelRoute) -> tuple[int, int, int, int, int]:
    """The dearest price of each kind among catalog models, in AdvisorCharge's order."""
    return (
        max(model.input_per_1m_nanos for model in models),
        max(model.output_per_1m_nanos for model in models),
        max(model.cache_read_per_1m_nanos for model in models),
        max(model.cache_write_per_1m_nanos for model in models),
        max(model.cache_write_1h_per_1m_nanos for model in models),
    )


def advisor_charge(
    advisor: ModelRoute, tokens: AdvisorTokens | None, executor: ModelRoute, request_id: str
) -> AdvisorCharge:
    """What a call's advisor tokens are charged at: its catalog model's prices; the dearer of
    those and the requested model's (`executor`), kind by kind, when an advisor call reported
    another model than the one the tool named (logged)."""
    tokens = tokens or AdvisorTokens()
    prices = _prices(advisor)
    others = [m for m in tokens.models if not same_model(advisor.upstream_model, m)]
    if others:
        prices = _prices(advisor, executor)
        log.warning(
            "request %s: an advisor call reported the model %r, not %r that the advisor tool"
            " named; its tokens are charged at the dearer of %s's and %s's prices (a model"
            " dearer than both would cost the operator the difference)",
            request_id,
            mask_tokens(others[0], 100),
            advisor.upstream_model,
            advisor.id,
            executor.id,
        )
    return AdvisorCharge(advisor.id, *prices, tokens=tokens)


def same_model(named: str, reported: str) -> bool:
    """Whether an advisor call's reported model is the one the tool named: the same id (in
    composed Unicode form), or the same with a date on one side only (`claude-opus-4-6` and
    `claude-opus-4-6-20260101`) or `-latest` on one side. Two different dates differ."""
    named_base, named_date = _undated(composed(named))
    reported_base, reported_date = _undated(composed(reported))
    dates = (named_date, reported_date)
    return named_base == reported_base and (
        named_date == reported_date or None in dates or "latest" in dates
    )


def _undated(name: str) -> tuple[str, str | None]:
    """A model id without its date (or `-latest`) suffix, and that suffix (None: none)."""
    dated = _SNAPSHOT.fullmatch(name)
    return (dated.group(1), dated.group(2)) if dated else (name, None)


def advisor_hold(advisor: ModelRoute, executor: ModelRoute, read: int, written: int) -> int:
    """The worst case of the advisor's calls: the tokens they may read at the dearest input
    price (a cache write may cost more than input), those they may write at the dearer output
    price, of the advisor's and the requested model's (`executor`) prices: what they are
    charged at if they report another model (extra_samplings.advisor_tokens gives both)."""
    return token_cost_nanos(
        read,
        written,
        max(advisor.max_input_per_1m_nanos, executor.max_input_per_1m_nanos),
        max(advisor.output_per_1m_nanos, executor.output_per_1m_nanos),
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
