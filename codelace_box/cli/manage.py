"""Management commands: users, credit, keys, providers and models, over the feature functions."""

from __future__ import annotations

from typing import Any

import click

from codelace_box.audit import states
from codelace_box.cli.amounts import (
    UsdAmount,
    credit_in_range,
    key_lines,
    key_rows,
    shown,
    usd_shown,
)
from codelace_box.cli.limit_options import (
    ACCOUNT_LIMIT_OPTIONS,
    KEY_LIMIT_OPTIONS,
    key_limit_options,
    limit_fields,
    named_as_options,
)
from codelace_box.cli.support import (
    CliState,
    audited,
    emit,
    json_option,
    pass_state,
    plain,
    show_key_once,
    table,
)
from codelace_box.cli.text import CheckedText
from codelace_box.db.core import iso_z
from codelace_box.money import usd_json, usd_text


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
        "rpm": user.rpm,  # None: the [limits] default
        "max_concurrent": user.max_concurrent,
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
    """An API key as the CLI shows it: the HTTP API's shape (never the full key), limits too."""
    from codelace_box.api.views import key_view as api_key_view

    return api_key_view(key)


def _checked_reason(text: str) -> None:
    from codelace_box.billing.credits import check_reason

    check_reason(text)


def _checked_key_name(text: str) -> None:
    from codelace_box.accounts.keys import key_name

    key_name(text)


KEY_NAME = CheckedText(_checked_key_name, "name")  # refused as a usage error (exit 2)


KEY_COLUMNS = ["id", "key_prefix", "name", "last_used_at", "spent_usd", "limit_usd",
               "limit_reset", "allowed_models", "can_manage_keys", "expires_at"]  # fmt: skip


@click.group()
def users() -> None:
    """Manage accounts.

    EMAIL may also be the account's id as `users list` shows it, or a unique start of it.
    """


def account_email(ref: str) -> str:
    """The email of the account an operator named by email or by id (a unique start of it)."""
    from codelace_box.accounts.users import get_account

    return str(get_account(ref).email)


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
    text = [shown(row, s.user) for row, s in zip(rows, found, strict=True)]
    emit(rows, as_json, lambda _: table(text, columns))


@users.command("show")
@click.argument("email")
@json_option
@pass_state
def users_show(state: CliState, email: str, as_json: bool) -> None:
    """Show one account with its usage totals and its keys."""
    from codelace_box.accounts.keys import list_keys
    from codelace_box.accounts.users import get_account
    from codelace_box.cli.limits_text import limits_in_effect, limits_text
    from codelace_box.reports.traffic import last_seen, usage_totals

    state.database()
    user, defaults = get_account(email), state.config().limits
    used, found = usage_totals(user.id), list_keys(user.id)
    view = user_view(user) | {
        "last_seen_at": iso_z(last_seen(user.id, user.last_seen_at)),
        "requests": used.requests,
        "input_tokens": used.input_tokens,
        "output_tokens": used.output_tokens,
        "spent_usd": usd_json(used.cost_nanos),
        "keys": [key_view(k) for k in found],
    }

    def render(v: dict[str, Any]) -> str:
        text = shown(v, user, used.cost_nanos) | limits_text(user, defaults)  # in effect
        lines = [f"{k}: {plain(value)}" for k, value in text.items() if k != "keys"]
        keys = table(key_rows(v["keys"], found), ["id", "key_prefix", "name", "expires_at"])
        return "\n".join(lines) + "\nkeys:\n" + keys  # an expired key: "expired <date>"

    emit(view | limits_in_effect(user, defaults) if as_json else view, as_json, render)


@users.command("limits")
@click.argument("email")
@click.option("--rpm", default=None, help="Inference requests per minute (0: unlimited; "
              "'default': the [limits] default).")  # fmt: skip
@click.option("--concurrent", default=None, help="Inference requests in flight at once (0: "
              "unlimited; 'default': the [limits] default).")  # fmt: skip
@pass_state
def users_limits(state: CliState, email: str, rpm: str | None, concurrent: str | None) -> None:
    """Set an account's request limits; past them its requests get 429 with Retry-After."""
    from codelace_box.accounts.limits import effective, set_user_limits
    from codelace_box.accounts.users import get_user

    state.database()
    email = account_email(email)
    fields = {name: value for name, value in (("rpm", rpm), ("max_concurrent", concurrent))
              if value is not None}  # fmt: skip
    if not fields:
        raise click.UsageError("nothing to change: give --rpm and/or --concurrent")
    with (
        named_as_options(ACCOUNT_LIMIT_OPTIONS),
        audited("users limits", email, lambda: states.user(email)),
    ):
        user = set_user_limits(get_user(email), fields)
    defaults = state.config().limits
    shown = [
        _limit_text(user.rpm, effective(user.rpm, defaults.rpm), "per minute"),
        _limit_text(user.max_concurrent, effective(user.max_concurrent, defaults.max_concurrent),
                    "at once"),
    ]  # fmt: skip
    click.echo(f"{user.email}: requests {shown[0]}, {shown[1]}")


def _limit_text(own: int | None, value: int, what: str) -> str:
    text = f"unlimited {what}" if value == 0 else f"{value} {what}"  # which one: said
    return text if own is not None else f"{text} (default)"


@users.command("create")
@click.argument("email")
@pass_state
def users_create(state: CliState, email: str) -> None:
    """Create an account (how invite-only signup lets someone in)."""
    from codelace_box.accounts.users import create_user, normalize_email

    state.database()
    email = normalize_email(email)  # the audit's target is the account's email, not the typing
    with audited("users create", email, lambda: states.user(email)):
        user = create_user(email, created_by_admin=True)
    click.echo(f"created user {user.uuid} {user.email}")


def _set_status(state: CliState, email: str, status: str) -> None:
    from codelace_box.accounts.users import set_user_status

    state.database()
    email = account_email(email)
    command = "users enable" if status == "active" else "users disable"
    with audited(command, email, lambda: states.user(email)):
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
@click.argument("amount_usd", type=UsdAmount(signed=True, in_range=credit_in_range))
@click.option(
    "--reason",
    required=True,
    type=CheckedText(_checked_reason, "reason"),
    help="Why (recorded in the ledger).",
)
@pass_state
def credit(state: CliState, email: str, amount_usd: Any, reason: str) -> None:
    """Add (or, negative, remove) credit through the ledger.

    Example: codelace-box credit ana@example.com -2.50 --reason "refund of a test top-up"
    """
    from codelace_box.billing.credits import adjust_balance

    state.database()
    email = account_email(email)
    with audited("credit", email, lambda: states.user(email)) as change:
        user, posting = adjust_balance(email, amount_usd, reason)
        amount = usd_text(posting.entry.amount_nanos)  # as balance_usd: `1e2` is "100"
        change.set_after((states.user(email) or {}) | {"amount_usd": amount, "reason": reason})
    click.echo(f"{user.email}: balance now {usd_shown(user.balance_nanos)} USD")


@click.group()
def keys() -> None:
    """Manage API keys."""


@keys.command("create")
@click.argument("email")
@click.option("--name", default="", type=KEY_NAME, help="A name for the key.")
@key_limit_options
@pass_state
def keys_create(
    state: CliState,
    email: str,
    name: str,
    limit_usd: str | None,
    limit_reset: str | None,
    expires: str | None,
    models: str | None,
    manage_keys: bool | None,
) -> None:
    """Create a key and print it (the only time it is shown).

    Example: codelace-box keys create ci@example.com --name ci --limit-usd 20 --limit-reset
    monthly --expires 2030-12-31 --models openai/gpt-5.4-mini,claude-haiku-4-5 --no-manage-keys
    """
    from codelace_box.accounts.keys import create_key
    from codelace_box.accounts.users import get_account, require_enabled

    state.database()
    fields = limit_fields(limit_usd, limit_reset, expires, models, manage_keys)
    user = get_account(email)
    require_enabled(user, f"enable it first: codelace-box users enable {user.email}")
    with (
        named_as_options(KEY_LIMIT_OPTIONS),
        audited("keys create", email) as change,
    ):  # create_key commits it with an fsync
        new = create_key(user.id, name, fields, relative=True)
        change.target = new.key.uuid
        change.set_after(states.api_key(new.key.uuid))
    show_key_once(new.full_key, new.key.uuid)
    click.echo(
        f"key id {new.key.uuid} ({new.key.key_prefix}...): store it now, it is not shown again",
        err=True,
    )


@keys.command("list")
@click.argument("email")
@json_option
@pass_state
def keys_list(state: CliState, email: str, as_json: bool) -> None:
    """List a user's keys (not revoked; one past its expiry says expired)."""
    from codelace_box.accounts.keys import list_keys
    from codelace_box.accounts.users import get_account

    state.database()
    found = list_keys(get_account(email).id)
    rows = [key_view(k) for k in found]
    emit(rows, as_json, lambda r: table(key_rows(r, found), KEY_COLUMNS))


@keys.command("update")
@click.argument("key_id")
@click.option("--name", default=None, type=KEY_NAME, help="A new name for the key.")
@key_limit_options
@json_option
@pass_state
def keys_update(
    state: CliState,
    key_id: str,
    name: str | None,
    limit_usd: str | None,
    limit_reset: str | None,
    expires: str | None,
    models: str | None,
    manage_keys: bool | None,
    as_json: bool,
) -> None:
    """Change a key's name and limits; options not given stay as they are, 'none' clears one.

    KEY_ID is the key's id or a unique start of it (see `keys list`).
    """
    from codelace_box.accounts.keys import find_key, update_key

    state.database()
    fields = limit_fields(limit_usd, limit_reset, expires, models, manage_keys)
    if name is not None:
        fields["name"] = name
    if not fields:
        raise click.UsageError("nothing to change: give --name, --limit-usd, --limit-reset, "
                               "--expires, --models or --manage-keys/--no-manage-keys")  # fmt: skip
    found = find_key(key_id).uuid
    with (
        named_as_options(KEY_LIMIT_OPTIONS),
        audited("keys update", found, lambda: states.api_key(found)),
    ):
        key = update_key(found, fields, relative=True)
    emit(key_view(key), as_json, lambda v: key_lines(v, key))


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
    found = find_key(key_id).uuid
    with audited("keys revoke", found, lambda: states.api_key(found)):
        key = revoke_key(found)
    click.echo(f"revoked key {key.uuid} ({key.key_prefix}...)")


MANAGE_COMMANDS: list[click.Command] = [users, credit, keys]
