"""The limit options of `keys create/update` and `users limits`, and their refusals (and the
`--since`/`--until` of `usage` and `audit`'s): a
service's refusal of one field is said as click says a bad option value, a usage error (exit
2) naming the option the operator typed (`--limit-reset`), not the API field (`limit_reset`),
as every other bad value on the command line is (the amounts, --max-output-tokens)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import click

from codelace_box.cli.amounts import UsdAmount
from codelace_box.errors import InvalidRequest

KEY_LIMIT_OPTIONS = {
    "limit_usd": "--limit-usd",
    "limit_reset": "--limit-reset",
    "expires_at": "--expires",
    "allowed_models": "--models",
}
ACCOUNT_LIMIT_OPTIONS = {"rpm": "--rpm", "max_concurrent": "--concurrent"}
MOMENT_OPTIONS = {"since": "--since", "until": "--until"}  # reports/moments.py's params


@contextmanager
def named_as_options(options: Mapping[str, str]) -> Iterator[None]:
    """Inside: an InvalidRequest about a field in `options` becomes click's BadParameter."""
    try:
        yield
    except InvalidRequest as exc:
        option = options.get(exc.param or "")
        if option is None:
            raise
        said = exc.message.removeprefix(f"{exc.param}: ").removeprefix(f"{option} ")
        raise click.BadParameter(said, param_hint=f"'{option}'") from None


def limit_fields(
    limit_usd: str | None,
    limit_reset: str | None,
    expires: str | None,
    models: str | None,
    manage_keys: bool | None = None,
) -> dict[str, Any]:
    """The key limit options given, as the fields accounts.limits checks ("none" clears)."""
    from codelace_box.accounts.limits import CLEAR_WORDS, MODELS_REFUSED, MODELS_REFUSED_WORDS

    if models is not None and models.strip().lower() in MODELS_REFUSED_WORDS:
        raise click.BadParameter(f"{models.strip()!r} {MODELS_REFUSED}", param_hint="'--models'")

    given = {
        "limit_usd": limit_usd,
        "limit_reset": limit_reset,
        "expires_at": expires,
        "allowed_models": models,
    }
    fields: dict[str, Any] = {}
    for name, value in given.items():
        if value is None:
            continue
        if value.strip().lower() in CLEAR_WORDS:
            fields[name] = None
        elif name == "allowed_models":
            fields[name] = _model_names(value)
        else:
            fields[name] = value
    if manage_keys is not None:
        fields["can_manage_keys"] = manage_keys
    return fields


def _model_names(value: str) -> list[str]:
    """--models' comma-separated names; none at all (an empty value) is a usage error."""
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise click.BadParameter(
            "names no model: give model ids, or 'all' for every model", param_hint="'--models'"
        )
    return names


CAP_CLEAR_WORDS = ("none", "null", "never", "all")  # accounts.limits.CLEAR_WORDS, not imported


def key_limit_options(command: Any) -> Any:
    """--limit-usd, --limit-reset, --expires (--expires-at), --models (--allowed-models) and
    --manage-keys/--no-manage-keys: --expires-at and --allowed-models are the SPEC's field names."""
    options = (
        click.option("--manage-keys/--no-manage-keys", "manage_keys", default=None, help="Whether "
                     "the key may create, change and revoke the account's keys through the API "
                     "(a new key may: --no-manage-keys for a key handed to a tool)."),
        click.option("--models", "--allowed-models", "models", default=None, help="Comma-"
                     "separated model ids or aliases the key may call ('all': every model)."),
        click.option("--expires", "--expires-at", "expires", default=None, help="When the key "
                     "stops working: an ISO 8601 "
                     "time (UTC unless it says otherwise) or 30d / 12h from now ('never')."),
        click.option("--limit-reset", default=None, help="daily, weekly, monthly (UTC) or "
                     "'none': the period of the cap never ends."),
        click.option("--limit-usd", type=UsdAmount(clear_words=CAP_CLEAR_WORDS), default=None,
                     help="Spend cap per period in USD ('none': no cap)."),
    )  # fmt: skip
    for option in options:
        command = option(command)
    return command
