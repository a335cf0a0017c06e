"""Catalog commands: upstream providers with their keys, and the priced model ids."""

from __future__ import annotations

import sys
from typing import Any

import click

from codelace_box.audit import states
from codelace_box.cli.support import (
    CliState,
    audited,
    emit,
    json_option,
    pass_state,
    table,
)
from codelace_box.db.core import MAX_SQLITE_INTEGER
from codelace_box.money import usd_json, usd_text
from codelace_box.providers import PROVIDER_KINDS


def provider_view(provider: Any) -> dict[str, Any]:
    """A provider with its keys masked."""
    from codelace_box.catalog.providers import allowed_fields, default_base_url, provider_keys

    return {
        "name": provider.name,
        "kind": provider.kind,
        "base_url": provider.base_url or default_base_url(provider.kind),
        "enabled": bool(provider.enabled),
        "allowed_fields": allowed_fields(provider),
        "responses_api": bool(provider.responses_api),
        "keys": [
            {
                "id": k.id,
                "hint": k.key_hint,
                "enabled": bool(k.enabled),
                "failing": bool(k.failing),
                "failure_reason": k.failure_reason,
            }
            for k in provider_keys(provider.id)
        ],
    }


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


def read_secret(value: str) -> str:
    """The value itself, or for '-' the first line of stdin (kept out of ps and shell history);
    at a terminal, a prompt that does not echo what is typed."""
    if value != "-":
        return value
    if sys.stdin.isatty():
        return str(click.prompt("Provider API key", hide_input=True, err=True)).strip()
    return sys.stdin.readline().strip()


@click.group()
def providers() -> None:
    """Manage upstream providers and their keys."""


ALLOW_HELP = (
    "Let requests to this provider carry a field that bills beyond the model's price "
    "(models, route, plugins, provider, transforms, web_search_options, service_tier, "
    "modalities, audio); repeatable."
)


RESPONSES_HELP = (
    "The provider serves OpenAI's Responses API itself (OpenAI does): /v1/responses is passed "
    "on natively instead of translated to Chat Completions (openai providers only)."
)


@providers.command("add")
@click.argument("name")
@click.option("--kind", type=click.Choice(PROVIDER_KINDS), required=True)
@click.option("--base-url", default="", help="Upstream base URL (default: the kind's own).")
@click.option(
    "--key", required=True, help="The provider API key (stored encrypted); '-' reads it from stdin."
)
@click.option("--allow-field", "allow", multiple=True, metavar="FIELD", help=ALLOW_HELP)
@click.option("--responses-api", is_flag=True, help=RESPONSES_HELP)
@pass_state
def providers_add(
    state: CliState,
    name: str,
    kind: str,
    base_url: str,
    key: str,
    allow: tuple[str, ...],
    responses_api: bool,
) -> None:
    """Add an upstream provider with its first key."""
    from codelace_box.catalog.providers import add_provider

    state.database()
    secret = read_secret(key)
    with audited("providers add", name, lambda: states.provider(name)):
        provider = add_provider(
            name, kind, state.secret_key(), secret, base_url, allow, responses_api=responses_api
        )
    click.echo(f"added provider {provider.name} ({provider.kind})")


@providers.command("update")
@click.argument("name")
@click.option("--base-url", default=None, help="Upstream base URL ('' for the kind's own).")
@click.option("--kind", type=click.Choice(PROVIDER_KINDS), default=None, help="The upstream's API.")
@click.option("--allow-field", "allow", multiple=True, metavar="FIELD", help=ALLOW_HELP)
@click.option(
    "--no-allow-field",
    "disallow",
    multiple=True,
    metavar="FIELD",
    help="Refuse this field again; repeatable.",
)
@click.option(
    "--responses-api/--no-responses-api",
    "responses_api",
    default=None,
    help=RESPONSES_HELP + " --no-responses-api: translate again.",
)
@pass_state
def providers_update(
    state: CliState,
    name: str,
    base_url: str | None,
    kind: str | None,
    allow: tuple[str, ...],
    disallow: tuple[str, ...],
    responses_api: bool | None,
) -> None:
    """Change a provider: only the options given change."""
    from codelace_box.catalog.providers import allowed_fields, default_base_url, update_provider

    if base_url is None and kind is None and not allow and not disallow and responses_api is None:
        raise click.UsageError(
            "nothing to change: give --base-url, --kind, --(no-)allow-field or --(no-)responses-api"
        )
    state.database()
    with audited("providers update", name, lambda: states.provider(name)):
        provider = update_provider(
            name,
            base_url=base_url,
            kind=kind,
            allow=allow,
            disallow=disallow,
            responses_api=responses_api,
        )
    fields = ", ".join(allowed_fields(provider)) or "none"
    base = provider.base_url or default_base_url(provider.kind)
    native = "; responses api: native" if provider.responses_api else ""
    click.echo(
        f"updated provider {provider.name} ({provider.kind}, {base}; allowed fields: {fields}"
        f"{native})"
    )


@providers.command("list")
@json_option
@pass_state
def providers_list(state: CliState, as_json: bool) -> None:
    """List providers and their keys (masked)."""
    from codelace_box.catalog.providers import list_providers

    state.database()
    rows = [provider_view(p) for p in list_providers()]

    def render(items: list[dict[str, Any]]) -> str:
        flat = [
            r
            | {
                "keys": ", ".join(
                    f"{k['id']}:{k['hint']}" + ("!" if k["failing"] else "") for k in r["keys"]
                ),
                "allowed_fields": ",".join(r["allowed_fields"]) or "-",
            }
            for r in items
        ]
        return table(flat, ["name", "kind", "base_url", "enabled", "keys", "allowed_fields"])

    emit(rows, as_json, render)


@providers.command("key-add")
@click.argument("name")
@click.option(
    "--key", required=True, help="Another API key for this provider; '-' reads it from stdin."
)
@pass_state
def providers_key_add(state: CliState, name: str, key: str) -> None:
    """Add a key to a provider's rotation."""
    from codelace_box.catalog.providers import add_provider_key

    state.database()
    secret = read_secret(key)
    with audited("providers key-add", name, lambda: states.provider(name)):
        added = add_provider_key(name, state.secret_key(), secret)
    click.echo(f"added key {added.id} ({added.key_hint}) to {name}")


@providers.command("disable")
@click.argument("name")
@pass_state
def providers_disable(state: CliState, name: str) -> None:
    """Disable a provider (its models answer 503)."""
    from codelace_box.catalog.providers import set_provider_enabled

    state.database()
    with audited("providers disable", name, lambda: states.provider(name)):
        set_provider_enabled(name, False)
    click.echo(f"provider {name} disabled")


@providers.command("enable")
@click.argument("name")
@pass_state
def providers_enable(state: CliState, name: str) -> None:
    """Enable a provider."""
    from codelace_box.catalog.providers import set_provider_enabled

    state.database()
    with audited("providers enable", name, lambda: states.provider(name)):
        set_provider_enabled(name, True)
    click.echo(f"provider {name} enabled")


@click.group()
def models() -> None:
    """Manage the model catalog and its prices."""


@models.command("set")
@click.argument("model_id")
@click.option("--input-per-1m", required=True, help="USD per 1M input tokens.")
@click.option("--output-per-1m", required=True, help="USD per 1M output tokens.")
@click.option("--provider", default=None, help="Provider name (default: the part before '/').")
@click.option("--upstream-model", default=None, help="Upstream name (default: the part after '/').")
@click.option(
    "--max-output-tokens",
    type=click.IntRange(max=MAX_SQLITE_INTEGER),
    default=None,
    help="Cap used when a request sets none.",
)
@click.option(
    "--context-tokens",
    type=click.IntRange(min=1, max=MAX_SQLITE_INTEGER),
    default=None,
    help="Context window: what a media part of unknown size reserves "
    "(default: gateway.default_context_tokens).",
)
@click.option("--cache-read-per-1m", default=None, help="USD per 1M cached input tokens read.")
@click.option("--cache-write-per-1m", default=None, help="USD per 1M input tokens cached.")
@click.option("--cache-write-1h-per-1m", default=None, help="USD per 1M tokens cached for 1 hour.")
@pass_state
def models_set(
    state: CliState,
    model_id: str,
    input_per_1m: str,
    output_per_1m: str,
    provider: str | None,
    upstream_model: str | None,
    max_output_tokens: int | None,
    context_tokens: int | None,
    cache_read_per_1m: str | None,
    cache_write_per_1m: str | None,
    cache_write_1h_per_1m: str | None,
) -> None:
    """Add a model or change its prices and upstream.

    Setting an existing id again keeps its provider, upstream name, output cap, context window
    and cache prices unless given: `models set ID --input-per-1m X --output-per-1m Y` only
    changes the prices. Cache prices never set are the input price (1-hour: the write price).
    """
    from codelace_box.catalog.models import CachePrices, set_model

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
    rows = [model_view(m) | {"aliases": aliases.get(m.id, [])} for m in list_models()]
    columns = ["id", "provider", "upstream_model", "input_per_1m", "output_per_1m"]
    columns += ["cache_read_per_1m", "cache_write_per_1m", "cache_write_1h_per_1m"]
    columns += ["context_tokens", "enabled", "aliases"]

    def render(items: list[dict[str, Any]]) -> str:
        return table([r | {"aliases": ", ".join(r["aliases"])} for r in items], columns)

    emit(rows, as_json, render)


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
