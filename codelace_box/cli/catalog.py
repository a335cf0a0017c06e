"""Catalog commands: upstream providers with their keys, and the priced model ids."""

from __future__ import annotations

import sys
from typing import Any

import click

from codelace_box.audit import states
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
from codelace_box.errors import CodelaceError
from codelace_box.providers import PROVIDER_KINDS
from codelace_box.providers.billed_fields import BILLED_FIELDS


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
                "parked": bool(k.failing) and bool(k.parked),
            }
            for k in provider_keys(provider.id)
        ],
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
    f"({', '.join(BILLED_FIELDS)}); repeatable. An advisor model (advisor) is charged at its "
    "own catalog prices: it must be in the catalog for this provider."
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
    _warn_about_the_base_url(provider)


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
    _warn_about_the_base_url(provider)


def _warn_about_the_base_url(provider: Any) -> None:
    from codelace_box.catalog.providers import base_url_warning

    warning = base_url_warning(provider)
    if warning:
        click.echo(f"warning: {warning}", err=True)


def _key_mark(key: dict[str, Any]) -> str:
    """After a key in the list: ' (off)' (turned off in the dashboard), ' (parked)' (out of
    rotation until key-enable), '!' (failing): each out of rotation."""
    if not key["enabled"]:
        return " (off)"
    return " (parked)" if key["parked"] else "!" if key["failing"] else ""


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
                "keys": ", ".join(f"{k['id']}:{k['hint']}{_key_mark(k)}" for k in r["keys"]),
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


@providers.command("remove")
@click.argument("name")
@pass_state
def providers_remove(state: CliState, name: str) -> None:
    """Remove a provider and its keys (refused while models use it)."""
    from codelace_box.catalog.providers import remove_provider

    state.database()
    with audited("providers remove", name, lambda: states.provider(name)):
        remove_provider(name)
    click.echo(f"removed provider {name} and its keys")


@providers.command("key-remove")
@click.argument("name")
@click.argument("key_id", type=WholeNumber(min=1, max=MAX_SQLITE_INTEGER))
@pass_state
def providers_key_remove(state: CliState, name: str, key_id: int) -> None:
    """Remove a key of a provider (KEY_ID as `providers list` shows it)."""
    from codelace_box.catalog.providers import has_working_key, provider_keys, remove_provider_key

    state.database()
    with audited("providers key-remove", name, lambda: states.provider(name)):
        key = remove_provider_key(name, key_id)
    click.echo(f"removed key {key.id} ({key.key_hint}) of {name}")
    if not has_working_key(provider_keys(key.provider.id)):
        click.echo(f"warning: {name} has no working key left; its models answer 503", err=True)


@providers.command("key-enable")
@click.argument("name")
@click.argument("key_id", type=WholeNumber(min=1, max=MAX_SQLITE_INTEGER))
@pass_state
def providers_key_enable(state: CliState, name: str, key_id: int) -> None:
    """Probe a key and, if its upstream accepts it, put it back in rotation (a flagged or
    disabled key; one already in rotation is probed all the same, and said to have been in
    rotation); a refused probe changes nothing and exits 1."""
    import asyncio

    from codelace_box.catalog.keyprobe import enable_after_probe
    from codelace_box.catalog.providers import set_key_enabled

    def enable(found: int) -> None:
        with audited("providers key-enable", name, lambda: states.provider(name)):
            set_key_enabled(found, True)

    config = state.config()
    state.database()
    was_in = _in_rotation(name, key_id)  # NotFound for a key the provider does not have
    timeout = config.gateway.connect_timeout_sec + 10
    result = asyncio.run(enable_after_probe(name, key_id, state.secret_key(), timeout, enable))
    if not result.ok:
        raise CodelaceError(
            f"key {key_id} of {name} {_where_it_stays(name, key_id)}: {result.message}"
        )
    if was_in:
        click.echo(
            f"key {key_id} of {name} was already in rotation; its upstream was asked again: "
            f"{result.message}"
        )
    else:
        click.echo(f"key {key_id} of {name} is back in rotation ({result.message})")


def _in_rotation(name: str, key_id: int) -> bool:
    """Whether the key is in rotation (enabled, not flagged)."""
    from codelace_box.catalog.providers import provider_key

    key = provider_key(name, key_id)
    return bool(key.enabled and not key.failing)


def _where_it_stays(name: str, key_id: int) -> str:
    """Where a key whose probe failed stays (the probe changed nothing): a key that was in
    rotation (enabled, not flagged) is still there."""
    if _in_rotation(name, key_id):
        return "stays in rotation (nothing changed)"
    return "stays out of rotation"


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
