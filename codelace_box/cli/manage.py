"""Management commands: users, credit, keys, providers and models, over the feature functions."""

from __future__ import annotations

from typing import Any

import click

from codelace_box.cli.support import (
    CliState,
    emit,
    json_option,
    parse_usd,
    pass_state,
    plain,
    table,
)
from codelace_box.db.core import iso_z
from codelace_box.money import usd_json


def user_view(
    user: Any, active_keys: int | None = None, requests: int | None = None
) -> dict[str, Any]:
    """A user as the CLI shows it."""
    view = {
        "id": user.uuid,
        "email": user.email,
        "display_name": user.display_name,
        "status": user.status,
        "credit_balance_usd": usd_json(user.balance_nanos),
        "held_usd": usd_json(user.held_nanos),
        "created_at": iso_z(user.created_at),
        "last_seen_at": iso_z(user.last_seen_at),
    }
    if active_keys is not None:
        view["active_keys"] = active_keys
    if requests is not None:
        view["requests"] = requests
    return view


def max_moment(*moments: Any) -> Any:
    """The latest of some moments (None when there are none)."""
    present = [m for m in moments if m is not None]
    return max(present) if present else None


def key_view(key: Any) -> dict[str, Any]:
    """An API key as the CLI shows it (never the full key)."""
    return {
        "id": key.uuid,
        "key_prefix": key.key_prefix,
        "name": key.name,
        "created_at": iso_z(key.created_at),
        "last_used_at": iso_z(key.last_used_at),
    }


@click.group()
def users() -> None:
    """Manage accounts."""


@users.command("list")
@click.option("--search", default="", help="Only emails containing this text.")
@json_option
@pass_state
def users_list(state: CliState, search: str, as_json: bool) -> None:
    """List accounts."""
    from codelace_box.accounts.users import list_users
    from codelace_box.reports.traffic import last_activity

    state.database()
    found = list_users(search)
    used = last_activity([s.user.id for s in found])
    rows = [
        user_view(s.user, s.active_keys, s.request_count)
        | {"last_seen_at": iso_z(max_moment(s.user.last_seen_at, used.get(s.user.id)))}
        for s in found
    ]
    columns = ["id", "email", "status", "credit_balance_usd", "active_keys", "requests"]
    emit(rows, as_json, lambda r: table(r, columns))


@users.command("show")
@click.argument("email")
@json_option
@pass_state
def users_show(state: CliState, email: str, as_json: bool) -> None:
    """Show one account with its usage totals and its keys."""
    from codelace_box.accounts.keys import list_keys
    from codelace_box.accounts.users import get_user
    from codelace_box.reports.traffic import last_seen, usage_totals

    state.database()
    user = get_user(email)
    used = usage_totals(user.id)
    view = user_view(user) | {
        "last_seen_at": iso_z(last_seen(user.id, user.last_seen_at)),
        "requests": used.requests,
        "input_tokens": used.input_tokens,
        "output_tokens": used.output_tokens,
        "spent_usd": usd_json(used.cost_nanos),
        "keys": [key_view(k) for k in list_keys(user.id)],
    }

    def render(v: dict[str, Any]) -> str:
        lines = [f"{k}: {v[k]}" for k in v if k != "keys"]
        return "\n".join(lines) + "\nkeys:\n" + table(v["keys"], ["id", "key_prefix", "name"])

    emit(view, as_json, render)


@users.command("create")
@click.argument("email")
@pass_state
def users_create(state: CliState, email: str) -> None:
    """Create an account (how invite-only signup lets someone in)."""
    from codelace_box.accounts.users import create_user

    state.database()
    user = create_user(email, created_by_admin=True)
    click.echo(f"created user {user.uuid} {user.email}")


def _set_status(state: CliState, email: str, status: str) -> None:
    from codelace_box.accounts.users import set_user_status

    state.database()
    user = set_user_status(email, status)
    click.echo(f"{user.email} is now {status}")


@users.command("disable")
@click.argument("email")
@pass_state
def users_disable(state: CliState, email: str) -> None:
    """Disable an account; its keys stop working at once."""
    _set_status(state, email, "disabled")


@users.command("enable")
@click.argument("email")
@pass_state
def users_enable(state: CliState, email: str) -> None:
    """Enable a disabled account."""
    _set_status(state, email, "active")


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("email")
@click.argument("amount_usd", type=parse_usd)
@click.option("--reason", required=True, help="Why (recorded in the ledger).")
@pass_state
def credit(state: CliState, email: str, amount_usd: Any, reason: str) -> None:
    """Add (or, negative, remove) credit through the ledger.

    Example: codelace-box credit ana@example.com -2.50 --reason "refund of a test top-up"
    """
    from codelace_box.billing.credits import adjust_balance

    state.database()
    user, _ = adjust_balance(email, amount_usd, reason)
    click.echo(f"{user.email}: balance now {plain(usd_json(user.balance_nanos))} USD")


@click.group()
def keys() -> None:
    """Manage API keys."""


@keys.command("create")
@click.argument("email")
@click.option("--name", default="", help="A name for the key.")
@pass_state
def keys_create(state: CliState, email: str, name: str) -> None:
    """Create a key and print it (the only time it is shown)."""
    from codelace_box.accounts.keys import create_key
    from codelace_box.accounts.users import get_user

    state.database()
    new = create_key(get_user(email).id, name)
    click.echo(new.full_key)
    click.echo(
        f"key id {new.key.uuid} ({new.key.key_prefix}...): store it now, it is not shown again",
        err=True,
    )


@keys.command("list")
@click.argument("email")
@json_option
@pass_state
def keys_list(state: CliState, email: str, as_json: bool) -> None:
    """List a user's active keys."""
    from codelace_box.accounts.keys import list_keys
    from codelace_box.accounts.users import get_user

    state.database()
    rows = [key_view(k) for k in list_keys(get_user(email).id)]
    emit(
        rows,
        as_json,
        lambda r: table(r, ["id", "key_prefix", "name", "created_at", "last_used_at"]),
    )


@keys.command("revoke")
@click.argument("key_id")
@pass_state
def keys_revoke(state: CliState, key_id: str) -> None:
    """Revoke a key; it stops working at once.

    KEY_ID is the key's id (a UUID, see `keys list`) or a unique start of it, e.g. its first
    8 characters.
    """
    from codelace_box.accounts.keys import find_key, revoke_key

    state.database()
    key = revoke_key(find_key(key_id).uuid)
    click.echo(f"revoked key {key.uuid} ({key.key_prefix}...)")


MANAGE_COMMANDS: list[click.Command] = [users, credit, keys]
