"""Configuration: codelace.toml plus CODELACE_<SECTION>_<KEY> overrides, as frozen dataclasses.

Every key is optional and has a built-in default. An unknown key, a wrong type or a bad value
raises `ConfigError` with one line naming the source (file or variable), the key and what was
expected. `render_example()` writes the commented file that `init` and `codelace.toml.example`
use, from the same field metadata, so the docs cannot drift from the code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from codelace_box.config_rules import MAX_WINDOW, check_combinations, imply_defaults
from codelace_box.config_secret import (  # the first two re-exported: callers import them here
    ensure_secret_key,  # noqa: F401
    existing_secret_key,  # noqa: F401
    read_secret_file,
    secret_key_path,
)
from codelace_box.config_values import DOMAIN, NOT_BLANK, URL, build_section
from codelace_box.errors import ConfigError

ENV_PREFIX = "CODELACE_"
CONFIG_ENV = "CODELACE_CONFIG"
DEFAULT_CONFIG_FILE = "codelace.toml"


def _opt(
    default: Any,
    doc: str,
    choices: tuple[str, ...] = (),
    minimum: float | None = None,
    maximum: float | None = None,
    pattern: tuple[str, str] | None = None,
) -> Any:
    """A config field: its default, its one-line doc and the rules its value must follow."""
    meta = {"doc": doc, "choices": choices, "minimum": minimum, "maximum": maximum}
    meta["pattern"] = pattern
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ServerConfig:
    host: str = _opt("127.0.0.1", "Address to listen on.", pattern=NOT_BLANK)
    port: int = _opt(8080, "Port to listen on.", minimum=1, maximum=65535)
    public_url: str = _opt(
        "", "Base URL for links (Stripe return URLs); empty: http://<host>:<port>.", pattern=URL
    )
    workers: int = _opt(1, "Server processes.", minimum=1, maximum=64)
    max_body_bytes: int = _opt(10485760, "Larger request bodies get 413.", minimum=1024)
    secret_key: str = _opt(
        "", "Encrypts provider keys at rest; empty: generated into the data directory."
    )
    proxies_count: int = _opt(
        0,
        "Reverse proxies in front of the box whose X-Forwarded-For is trusted for the client "
        "address (sign-in rate limits); 0 trusts none.",
        minimum=0,
        maximum=16,
    )

    @property
    def base_url(self) -> str:
        """The public URL, or the listen address when none is set."""
        ipv6 = ":" in self.host and not self.host.startswith("[")
        host = f"[{self.host}]" if ipv6 else self.host
        return (self.public_url or f"http://{host}:{self.port}").rstrip("/")


@dataclass(frozen=True)
class DatabaseConfig:
    path: str = _opt(
        "data/codelace.db",
        "SQLite file (WAL); its folder is the data directory. A relative path is relative to "
        "the config file's folder (the working directory when there is no file).",
        pattern=NOT_BLANK,
    )


@dataclass(frozen=True)
class AuthConfig:
    otp_ttl_sec: int = _opt(600, "Lifetime of a sign-in code, in seconds.", minimum=30)
    signup: str = _opt(
        "open",
        "Who may create an account: open, domains (allowed_email_domains) or invite.",
        choices=("open", "domains", "invite"),
    )
    allowed_email_domains: list[str] = _opt(
        [], 'For signup = "domains", e.g. ["example.com"].', pattern=DOMAIN
    )
    otp_requests_per_email: int = _opt(
        5, "Sign-in codes mailed to one address per rate_limit_window_sec; more get 429.", minimum=1
    )
    otp_requests_per_address: int = _opt(
        50, "Sign-in codes asked for from one client address per window.", minimum=1
    )
    otp_verifies_per_email: int = _opt(
        10, "Code checks (sign-in attempts) for one address per window.", minimum=1
    )
    otp_verifies_per_address: int = _opt(
        100, "Code checks from one client address per window.", minimum=1
    )
    rate_limit_window_sec: int = _opt(
        600, "Sliding window of the sign-in rate limits, in seconds.", minimum=1, maximum=MAX_WINDOW
    )


@dataclass(frozen=True)
class EmailConfig:
    backend: str = _opt(
        "console", "console prints codes to the server log; smtp sends mail.", ("console", "smtp")
    )
    smtp_host: str = _opt("", "SMTP server host.")
    smtp_port: int = _opt(
        587,
        "SMTP server port (465 when smtp_ssl is true and this is not set).",
        minimum=1,
        maximum=65535,
    )
    smtp_username: str = _opt("", "SMTP login (empty: no login).")
    smtp_password: str = _opt("", "SMTP password.")
    smtp_starttls: bool = _opt(
        True,
        "Upgrade the SMTP connection with STARTTLS (off when smtp_ssl is true and this is "
        "not set).",
    )
    smtp_ssl: bool = _opt(
        False,
        "Implicit TLS from the first byte (SMTPS, usually port 465); do not combine with "
        "smtp_starttls.",
    )
    from_address: str = _opt(
        "codelace-box@localhost",
        "From address of sign-in mails.",
        pattern=(r"[^@\s]+@[^@\s]+|.*<[^@\s<>]+@[^@\s<>]+>", "an email address"),
    )


@dataclass(frozen=True)
class StripeConfig:
    secret_key: str = _opt(
        "", "Stripe secret key; empty turns Stripe off (its endpoints answer 503)."
    )
    webhook_secret: str = _opt("", "Signing secret of the Stripe webhook endpoint (whsec_...).")
    api_base: str = _opt(
        "", "Where the Stripe client sends API calls; empty: Stripe's own.", pattern=URL
    )
    min_topup_usd: Decimal = _opt(Decimal("10"), "Smallest top-up, in USD.", minimum=0)
    trial_credit_usd: Decimal = _opt(
        Decimal("1"), "Credit granted by the first card setup.", minimum=0
    )
    currency: str = _opt(
        "usd",
        "Currency of Checkout Sessions.",
        pattern=(r"[a-z]{3}", "a three-letter currency code in lower case, e.g. usd"),
    )


@dataclass(frozen=True)
class GatewayConfig:
    connect_timeout_sec: float = _opt(10.0, "Upstream connect timeout.", minimum=0.001)
    read_timeout_sec: float = _opt(600.0, "Upstream read timeout, between bytes.", minimum=0.001)
    max_retries: int = _opt(
        2, "Retries on another key before any byte reached the client.", minimum=0
    )


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    email: EmailConfig = field(default_factory=EmailConfig)
    stripe: StripeConfig = field(default_factory=StripeConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    source: str = "built-in defaults"

    @property
    def data_dir(self) -> Path:
        """The folder holding the database and generated secrets."""
        return Path(self.database.path).resolve().parent


SECTIONS: dict[str, type] = {
    "server": ServerConfig,
    "database": DatabaseConfig,
    "auth": AuthConfig,
    "email": EmailConfig,
    "stripe": StripeConfig,
    "gateway": GatewayConfig,
}


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a BOM (Windows editors) is harmless
        return tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start]
        raise ConfigError(
            f"{path}: not valid TOML: not UTF-8 text (byte {exc.start} is {bad:#x})"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _collect(
    data: dict[str, Any], source: str, env: dict[str, str]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]]]:
    raw: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    origin: dict[str, dict[str, str]] = {name: {} for name in SECTIONS}
    for section, body in data.items():
        if section not in SECTIONS and not isinstance(body, dict):
            raise ConfigError(
                f"{source}: unknown key {section} outside any section (keys belong under "
                f"one of: {', '.join(f'[{name}]' for name in SECTIONS)})"
            )
        if section not in SECTIONS:
            raise ConfigError(
                f"{source}: unknown section [{section}] (known: {', '.join(SECTIONS)})"
            )
        if not isinstance(body, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        for key, value in body.items():
            raw[section][key] = value
            origin[section][key] = source
    for var, value in sorted(env.items()):
        if not var.startswith(ENV_PREFIX) or var == CONFIG_ENV:
            continue
        rest = var[len(ENV_PREFIX) :].lower()
        matched = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        if matched is None:
            continue
        section, key = matched, rest[len(matched) + 1 :]
        raw[section][key] = value
        origin[section][key] = f"env {var}"
    return raw, origin


def resolve_config_path(explicit: str | None, env: dict[str, str] | None = None) -> Path | None:
    """The config file to read: --config, else $CODELACE_CONFIG, else ./codelace.toml if present."""
    env = dict(os.environ) if env is None else env
    if explicit:
        return Path(explicit)
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.exists() else None


def load_config(explicit: str | None = None, env: dict[str, str] | None = None) -> Config:
    """Read, merge and validate the configuration; raises ConfigError on any problem."""
    env = dict(os.environ) if env is None else env
    path = resolve_config_path(explicit, env)
    data = _read_file(path) if path else {}
    config = build_config(data, str(path) if path else "built-in defaults", env)
    return _anchor_database_path(config, path)


def _anchor_database_path(config: Config, path: Path | None) -> Config:
    """A relative database path read with a config file is relative to that file's folder."""
    db_path = Path(config.database.path)
    if path is None or db_path.is_absolute():
        return config
    anchored = str(path.resolve().parent / db_path)
    return dataclasses.replace(config, database=dataclasses.replace(config.database, path=anchored))


def build_config(data: dict[str, Any], source: str, env: dict[str, str]) -> Config:
    """Validate parsed TOML `data` (from `source`) with `env` overrides into a Config."""
    raw, origin = _collect(data, source, env)
    sections = {
        name: build_section(name, cls, raw[name], origin[name]) for name, cls in SECTIONS.items()
    }
    config = imply_defaults(Config(source=source, **sections), origin)
    check_combinations(config, origin)
    return config


def _secret_in_use(target: Path, env: dict[str, str]) -> tuple[str, str] | None:
    """The server secret stored provider keys may already use, and where it was found."""
    config = None
    if target.exists():
        try:
            config = load_config(str(target), env)
        except ConfigError:
            config = None
    config = config or build_config({}, "built-in defaults", env)
    if config.server.secret_key:
        return config.server.secret_key, config.source
    path = secret_key_path(config)
    existing = read_secret_file(path) if path.is_file() else ""
    return (existing, str(path)) if existing else None


def write_initial_config(target: Path, env: dict[str, str] | None = None) -> str | None:
    """Write `init`'s file (mode 600, atomically); returns where a reused secret came from.

    A secret already in use (in the file being replaced, or generated into the data
    directory by an earlier `serve`) is kept, so provider keys stored with it stay readable.
    """
    env = dict(os.environ) if env is None else env
    found = _secret_in_use(target, env)
    text = init_config_text(found[0] if found else None)
    staged = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(staged, target)
    except OSError as exc:
        with contextlib.suppress(OSError):  # nothing to remove where nothing could be made
            staged.unlink(missing_ok=True)
        raise ConfigError(f"{target}: cannot write: {exc.strerror}") from None
    return found[1] if found else None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_example(secrets_by_key: dict[str, str] | None = None) -> str:
    """The commented config file: every key with its default; given secrets are filled in."""
    secrets_by_key = secrets_by_key or {}
    lines = [
        "# codelace-box configuration. Every key is optional; the values shown are the defaults.",
        "# Environment variables override keys as CODELACE_<SECTION>_<KEY>, e.g.",
        '# CODELACE_SERVER_PORT=9000; booleans as true/false, lists as a,b or ["a", "b"].',
        "# A relative database.path is relative to this file's folder.",
    ]
    for section_name, cls in SECTIONS.items():
        lines += ["", f"[{section_name}]"]
        defaults = cls()
        for spec in dataclasses.fields(cls):
            dotted = f"{section_name}.{spec.name}"
            lines.append(f"# {spec.metadata['doc']}")
            value = secrets_by_key.get(dotted, getattr(defaults, spec.name))
            prefix = "" if dotted in secrets_by_key else "# "
            lines.append(f"{prefix}{spec.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def init_config_text(secret_key: str | None = None) -> str:
    """The file `codelace-box init` writes: the example with the server secret filled in.

    Pass the secret already in use (so stored provider keys stay readable); else a fresh one.
    """
    return render_example({"server.secret_key": secret_key or secrets.token_urlsafe(32)})
