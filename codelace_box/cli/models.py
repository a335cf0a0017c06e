"""Model catalog commands: the priced model ids, their aliases, and their removal."""

from __future__ import annotations

from typing import Any

import click

from codelace_box.audit import states
from codelace_box.cli.amounts import UsdAmount, price_in_range
from codelace_box.cli.support import (
    CliState,
    WholeNumber,
    audited,
    emit,
    json_option,
    pass_state,
    table,
)
from codelace_box.db.core import MAX_SQLITE_INTEGER
from codelace_box.money import usd_json, usd_text


def model_view(model: Any) -> dict[str, Any]:
    """A catalog entry with its prices in USD per 1M tokens."""
    return {
        "id": model.id,
        "provider": model.provider.name,
        "upstream_model": model.upstream_model,
        "input_per_1m": usd_json(model.input_per_1m_nanos),
        "output_per_1m": usd_json(model.output_per_1m_nanos),
        "max_output_tokens": model.max_output_tokens,
        "context_tokens": model.context_tokens,
        "enabled": bool(model.enabled),
        **cache_view(model),
    }


def cache_view(model: Any) -> dict[str, float]:
    """A model's prompt-cache prices in USD per 1M tokens, unset ones resolved as billed."""
    read = model.cache_read_per_1m_nanos
    write = model.cache_write_per_1m_nanos
    write_1h = model.cache_write_1h_per_1m_nanos
    input_price = model.input_per_1m_nanos
    write = input_price if write is None else write
    return {
        "cache_read_per_1m": usd_json(input_price if read is None else read),
        "cache_write_per_1m": usd_json(write),
        "cache_write_1h_per_1m": usd_json(write if write_1h is None else write_1h),
    }


class TokensOrNone(click.ParamType):
    """A token count, or `none` to unset it (as `keys update --limit-usd none`)."""

    name = "integer|none"

    def __init__(self, count: WholeNumber) -> None:
        self.count = count

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from codelace_box.catalog.models import CLEAR

        if isinstance(value, str) and value.strip().lower() == "none":
            return CLEAR
        return self.count.convert(value, param, ctx)


PRICE = UsdAmount(in_range=price_in_range)
CACHE_PRICE = UsdAmount(clear_words=("none",), in_range=price_in_range)


@click.group()
def models() -> None:
    """Manage the model catalog and its prices."""


@models.command("set")
@click.argument("model_id")
@click.option(
    "--input-per-1m",
    type=PRICE,
    default=None,
    help="USD per 1M input tokens (new model: required).",
)
@click.option(
    "--output-per-1m",
    type=PRICE,
    default=None,
    help="USD per 1M output tokens (new model: required).",
)
@click.option("--provider", default=None, help="Provider name (default: the part before '/').")
@click.option("--upstream-model", default=None, help="Upstream name (default: the part after '/').")
@click.option(
    "--max-output-tokens",
    type=TokensOrNone(WholeNumber(min=1, max=MAX_SQLITE_INTEGER)),
    default=None,
    help="Output cap for a request that sets none ('none' or unset: 4,096).",
)
@click.option(
    "--context-tokens",
    type=TokensOrNone(WholeNumber(min=1, max=MAX_SQLITE_INTEGER)),
    default=None,
    help="Context window: what a media part of unknown size reserves "
    "('none' or unset: gateway.default_context_tokens).",
)
@click.option(
    "--cache-read-per-1m",
    type=CACHE_PRICE,
    default=None,
    help="USD per 1M cached input tokens read ('none': the input price).",
)
@click.option(
    "--cache-write-per-1m",
    type=CACHE_PRICE,
    default=None,
    help="USD per 1M input tokens cached ('none': the input price).",
)
@click.option(
    "--cache-write-1h-per-1m",
    type=CACHE_PRICE,
    default=None,
    help="USD per 1M tokens cached for 1 hour ('none': the write price).",
)
@pass_state
def models_set(
    state: CliState,
    model_id: str,
    input_per_1m: str | None,
    output_per_1m: str | None,
    provider: str | None,
    upstream_model: str | None,
    max_output_tokens: Any,
    context_tokens: Any,
    cache_read_per_1m: str | None,
    cache_write_per_1m: str | None,
    cache_write_1h_per_1m: str | None,
) -> None:
    """Add a model (both prices needed) or change what is given of an existing one.

    Setting an existing id again changes only the options given: `models set ID --input-per-1m
    X` changes the input price and keeps the rest. Cache prices never set are the input price
    (1-hour: the write price).
    """
    from codelace_box.catalog.models import CachePrices, set_model

    _refuse_nothing_to_set(
        input_per_1m, output_per_1m, provider, upstream_model, max_output_tokens,
        context_tokens, cache_read_per_1m, cache_write_per_1m, cache_write_1h_per_1m,
    )  # fmt: skip
    state.database()
    with audited("models set", model_id, lambda: states.model(model_id)):
        model = set_model(
            model_id,
            input_per_1m,
            output_per_1m,
            provider=provider,
            upstream_model=upstream_model,
            max_output_tokens=max_output_tokens,
            context_tokens=context_tokens,
            keep_unset=True,
            cache_prices=CachePrices(cache_read_per_1m, cache_write_per_1m, cache_write_1h_per_1m),
        )
    prices = [usd_text(n) for n in (model.input_per_1m_nanos, model.output_per_1m_nanos)]
    click.echo(f"{model.id}: ${prices[0]} in / ${prices[1]} out per 1M tokens")


def _refuse_nothing_to_set(*given: Any) -> None:
    """A usage error when `models set` got no option: otherwise it would log an audit entry
    with no change in it."""
    if all(value is None for value in given):
        raise click.UsageError(
            "nothing to set: give --input-per-1m and --output-per-1m (a new model needs both), "
            "--provider, --upstream-model, --max-output-tokens, --context-tokens, "
            "--cache-read-per-1m, --cache-write-per-1m or --cache-write-1h-per-1m"
        )


@models.command("list")
@json_option
@pass_state
def models_list(state: CliState, as_json: bool) -> None:
    """List the catalog."""
    from codelace_box.catalog.aliases import list_aliases
    from codelace_box.catalog.models import list_models

    state.database()
    aliases: dict[str, list[str]] = {}
    for name, target in list_aliases().items():
        aliases.setdefault(target, []).append(name)
    rows = [model_view(m) | {"aliases": aliases.get(m.id, []), "served": served(m)}
            for m in list_models()]  # fmt: skip
    columns = ["id", "provider", "upstream_model", "input_per_1m", "output_per_1m"]
    columns += ["cache_read_per_1m", "cache_write_per_1m", "cache_write_1h_per_1m"]
    columns += ["max_output_tokens", "context_tokens", "enabled", "aliases"]

    def render(items: list[dict[str, Any]]) -> str:
        return table([r | {"aliases": ", ".join(r["aliases"]), "enabled": enabled_text(r)}
                      for r in items], columns)  # fmt: skip

    emit(rows, as_json, render)


def served(model: Any) -> bool:
    """Whether requests for a model are served (and /v1/models lists it): it and its provider
    are enabled."""
    return bool(model.enabled and model.provider.enabled)


def enabled_text(row: dict[str, Any]) -> str:
    """The Enabled cell: an enabled model its disabled provider keeps from being served says so."""
    return (
        f"{row['enabled']} (provider off)"
        if row["enabled"] and not row["served"]
        else str(row["enabled"])
    )


@models.command("alias")
@click.argument("name")
@click.argument("model_id")
@pass_state
def models_alias(state: CliState, name: str, model_id: str) -> None:
    """Route a bare model name a client sends (claude-haiku-4-5) to a catalog model."""
    from codelace_box.catalog.aliases import set_alias

    state.database()
    with audited("models alias", name, lambda: states.alias(name)):
        set_alias(name, model_id)
    click.echo(f"alias {name} -> {model_id}")


@models.command("unalias")
@click.argument("name")
@pass_state
def models_unalias(state: CliState, name: str) -> None:
    """Remove a model alias."""
    from codelace_box.catalog.aliases import remove_alias

    state.database()
    with audited("models unalias", name, lambda: states.alias(name)):
        remove_alias(name)
    click.echo(f"alias {name} removed")


@models.command("remove")
@click.argument("model_id")
@pass_state
def models_remove(state: CliState, model_id: str) -> None:
    """Remove a model id from the catalog (its aliases go with it; usage history stays)."""
    from codelace_box.catalog.models import remove_model

    state.database()
    with audited("models remove", model_id, lambda: states.model(model_id)):
        aliases = remove_model(model_id)
    gone = f" and its aliases {', '.join(aliases)}" if aliases else ""
    click.echo(f"removed model {model_id}{gone}")


@models.command("disable")
@click.argument("model_id")
@pass_state
def models_disable(state: CliState, model_id: str) -> None:
    """Disable a model id (requests for it get 404)."""
    from codelace_box.catalog.models import set_model_enabled

    state.database()
    with audited("models disable", model_id, lambda: states.model(model_id)):
        set_model_enabled(model_id, False)
    click.echo(f"model {model_id} disabled")


@models.command("enable")
@click.argument("model_id")
@pass_state
def models_enable(state: CliState, model_id: str) -> None:
    """Enable a model id."""
    from codelace_box.catalog.models import set_model_enabled

    state.database()
    with audited("models enable", model_id, lambda: states.model(model_id)):
        set_model_enabled(model_id, True)
    click.echo(f"model {model_id} enabled")
