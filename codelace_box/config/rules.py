"""Configuration rules that span keys: settings that need another one, and defaults that
follow another key (smtp_ssl moves the SMTP port and STARTTLS defaults); and values tidied
as read (`trim_line_ends`: the SMTP login and password without a file's trailing newline).

`config.loading.build_config` applies `trim_line_ends`, `imply_defaults` and then
`check_combinations` to the Config it built; the last two name the source of the key at fault
in a one-line ConfigError.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from codelace_box.errors import ConfigError

if TYPE_CHECKING:
    from codelace_box.config.schema import Config

SMTPS_PORT = 465
MAX_STRIPE_USD = 1_000_000  # as `credit`: far above any trial
MAX_TOPUP_USD = 10_000  # the largest top-up a Checkout Session is made for
Origin = dict[str, dict[str, str]]  # section -> key -> where its value came from


def trim_line_ends(config: Config) -> Config:
    """email.smtp_username and smtp_password without trailing CR/LF: a secret read from a file
    (a secret store, docker's `--env-file`, a TOML multi-line string) often ends with one, and
    no mail server takes it as part of the login (every sign-in mail failed on it)."""
    email = config.email
    username, password = email.smtp_username.rstrip("\r\n"), email.smtp_password.rstrip("\r\n")
    if (username, password) == (email.smtp_username, email.smtp_password):
        return config
    trimmed = dataclasses.replace(email, smtp_username=username, smtp_password=password)
    return dataclasses.replace(config, email=trimmed)


def imply_defaults(config: Config, origin: Origin) -> Config:
    """With smtp_ssl on, an unset smtp_starttls means off and an unset smtp_port means 465."""
    email, given = config.email, origin["email"]
    if not email.smtp_ssl:
        return config
    changes: dict[str, Any] = {}
    if "smtp_starttls" not in given:
        changes["smtp_starttls"] = False
    if "smtp_port" not in given:
        changes["smtp_port"] = SMTPS_PORT
    return dataclasses.replace(config, email=dataclasses.replace(email, **changes))


def check_combinations(config: Config, origin: Origin) -> None:
    """Keys that only make sense together: a setting that needs another one set, or unset."""
    if config.email.backend == "smtp" and not config.email.smtp_host:
        where = _culprit(origin["email"], "smtp_host", "backend", config.source)
        raise ConfigError(f'{where}: email.smtp_host must be set when email.backend = "smtp"')
    if config.auth.signup == "domains" and not config.auth.allowed_email_domains:
        where = _culprit(origin["auth"], "allowed_email_domains", "signup", config.source)
        raise ConfigError(
            f'{where}: auth.allowed_email_domains must list domains when auth.signup = "domains"'
        )
    if config.email.smtp_ssl and config.email.smtp_starttls:
        where = origin["email"].get("smtp_ssl", config.source)
        raise ConfigError(
            f"{where}: email.smtp_ssl and email.smtp_starttls cannot both be true "
            "(smtp_ssl is TLS from the first byte; STARTTLS upgrades a plain connection)"
        )
    _check_whole_cents(config, origin)
    if config.database.is_postgres and not config.server.secret_key:
        where = origin["database"].get("url", config.source)
        raise ConfigError(
            f"{where}: server.secret_key must be set when database.url is PostgreSQL "
            "(every box sharing the database needs the same secret)"
        )
    if config.database.is_postgres and config.backup.every_hours:
        where = origin["backup"].get("every_hours", config.source)
        raise ConfigError(  # they would copy database.path: a stale file, or none
            f"{where}: backup.every_hours must be 0 when database.url is PostgreSQL "
            "(scheduled backups copy a SQLite file; back PostgreSQL up with pg_dump)"
        )


def _culprit(given: dict[str, str], emptied: str, needing: str, default: str) -> str:
    """Where the mistake is: the source that set `emptied` empty (an unset docker compose
    variable is an empty one), else the one that set the key `needing` it."""
    return given.get(emptied) or given.get(needing, default)


def _check_whole_cents(config: Config, origin: Origin) -> None:
    """Stripe amounts are charged and credited in cents: a finer one could never be paid."""
    for key, most in (("min_topup_usd", MAX_TOPUP_USD), ("trial_credit_usd", MAX_STRIPE_USD)):
        value: Decimal = getattr(config.stripe, key)
        where = origin["stripe"].get(key, config.source)
        if value > most:  # past the largest top-up none could be paid; 1e400 not even rounded
            raise ConfigError(f"{where}: stripe.{key} must be at most {most:,} USD")
        if value != value.quantize(Decimal("0.01")):
            shown = f"{value:f}" if value.adjusted() > -20 else str(value)  # not 1e-9 zeros
            raise ConfigError(
                f"{where}: stripe.{key} must be a USD amount in whole cents "
                f"(e.g. 1 or 0.50), not {shown}"
            )
