"""Configuration: codelace.toml plus CODELACE_<SECTION>_<KEY> overrides, as frozen dataclasses.

Every key is optional and has a built-in default. An unknown key, a wrong type or a bad value
raises `ConfigError` with one line naming the source (file or variable), the key and what was
expected. `render_example()` writes the commented file that `init` and `codelace.toml.example`
use, from the same field metadata, so the docs cannot drift from the code.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, get_type_hints

from codelace_box.errors import ConfigError

ENV_PREFIX = "CODELACE_"
CONFIG_ENV = "CODELACE_CONFIG"
DEFAULT_CONFIG_FILE = "codelace.toml"


def _opt(
    default: Any, doc: str, choices: tuple[str, ...] = (), minimum: float | None = None
) -> Any:
    meta = {"doc": doc, "choices": choices, "minimum": minimum}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ServerConfig:
    host: str = _opt("127.0.0.1", "Address to listen on.")
    port: int = _opt(8080, "Port to listen on.", minimum=0)
    public_url: str = _opt(
        "", "Base URL for links (Stripe return URLs); empty: http://<host>:<port>."
    )
    workers: int = _opt(1, "Server processes.", minimum=1)
    max_body_bytes: int = _opt(10485760, "Larger request bodies get 413.", minimum=1024)
    secret_key: str = _opt(
        "", "Encrypts provider keys at rest; empty: generated into the data directory."
    )

    @property
    def base_url(self) -> str:
        """The public URL, or the listen address when none is set."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


@dataclass(frozen=True)
class DatabaseConfig:
    path: str = _opt("data/codelace.db", "SQLite file (WAL); its folder is the data directory.")


@dataclass(frozen=True)
class AuthConfig:
    otp_ttl_sec: int = _opt(600, "Lifetime of a sign-in code, in seconds.", minimum=30)
    signup: str = _opt(
        "open",
        "Who may create an account: open, domains (allowed_email_domains) or invite.",
        choices=("open", "domains", "invite"),
    )
    allowed_email_domains: list[str] = _opt([], 'For signup = "domains", e.g. ["example.com"].')


@dataclass(frozen=True)
class EmailConfig:
    backend: str = _opt(
        "console", "console prints codes to the server log; smtp sends mail.", ("console", "smtp")
    )
    smtp_host: str = _opt("", "SMTP server host.")
    smtp_port: int = _opt(587, "SMTP server port.", minimum=1)
    smtp_username: str = _opt("", "SMTP login (empty: no login).")
    smtp_password: str = _opt("", "SMTP password.")
    smtp_starttls: bool = _opt(True, "Upgrade the SMTP connection with STARTTLS.")
    from_address: str = _opt("codelace-box@localhost", "From address of sign-in mails.")


@dataclass(frozen=True)
class StripeConfig:
    secret_key: str = _opt(
        "", "Stripe secret key; empty turns Stripe off (its endpoints answer 503)."
    )
    webhook_secret: str = _opt("", "Signing secret of the Stripe webhook endpoint (whsec_...).")
    api_base: str = _opt("", "Where the Stripe client sends API calls; empty: Stripe's own.")
    min_topup_usd: Decimal = _opt(Decimal("10"), "Smallest top-up, in USD.", minimum=0)
    trial_credit_usd: Decimal = _opt(
        Decimal("1"), "Credit granted by the first card setup.", minimum=0
    )
    currency: str = _opt("usd", "Currency of Checkout Sessions.")


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


def _expected(kind: Any) -> str:
    names = {int: "an integer", float: "a number", Decimal: "a number", bool: "true or false"}
    if kind is str:
        return "a string"
    if kind == list[str]:
        return "a list of strings"
    return names.get(kind, str(kind))


def _coerce(kind: Any, value: Any, from_env: bool) -> Any:
    """Convert one raw value to the field's type; raises ValueError when it does not fit."""
    if from_env:
        value = _parse_env_value(kind, value)
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind in (float, Decimal):
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            return kind(str(value)) if kind is Decimal else float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    elif kind == list[str] and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(_expected(kind))


def _parse_env_value(kind: Any, raw: str) -> Any:
    text = raw.strip()
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            return int(text)
        if kind in (float, Decimal):
            return Decimal(text)
    except (ValueError, InvalidOperation):
        raise ValueError(_expected(kind)) from None
    if kind == list[str]:
        return [item.strip() for item in text.split(",") if item.strip()]
    return raw


def _check_value(section: type, name: str, value: Any) -> None:
    meta = {f.name: f.metadata for f in dataclasses.fields(section)}[name]
    choices, minimum = meta.get("choices"), meta.get("minimum")
    if choices and value not in choices:
        raise ValueError("one of " + ", ".join(repr(c) for c in choices))
    if minimum is not None and value < minimum:
        raise ValueError(f"a value of at least {minimum}")


def _build_section(section_name: str, raw: dict[str, Any], origin: dict[str, str]) -> Any:
    cls = SECTIONS[section_name]
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for name, value in raw.items():
        where = origin[name]
        if name not in hints:
            known = ", ".join(hints)
            raise ConfigError(f"{where}: unknown key {section_name}.{name} (known: {known})")
        try:
            coerced = _coerce(hints[name], value, where.startswith("env "))
            _check_value(cls, name, coerced)
        except ValueError as exc:
            shown = "<hidden>" if "secret" in name or "password" in name else repr(value)
            raise ConfigError(
                f"{where}: {section_name}.{name} must be {exc}, got {shown}"
            ) from None
        values[name] = coerced
    return cls(**values)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
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
        if section not in SECTIONS:
            raise ConfigError(
                f"{source}: unknown section [{section}] (known: {', '.join(SECTIONS)})"
            )
        if not isinstance(body, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        for key, value in body.items():
            raw[section][key] = value
            origin[section][key] = source
    for var, value in env.items():
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
    source = str(path) if path else "built-in defaults"
    raw, origin = _collect(data, source, env)
    sections = {name: _build_section(name, raw[name], origin[name]) for name in SECTIONS}
    return Config(source=source, **sections)


def ensure_secret_key(config: Config) -> str:
    """The server secret: from config, else read from (or generated into) the data directory."""
    if config.server.secret_key:
        return config.server.secret_key
    path = config.data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


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
        "# Environment variables override keys as CODELACE_<SECTION>_<KEY>.",
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


def init_config_text() -> str:
    """The file `codelace-box init` writes: the example with fresh secrets filled in."""
    return render_example({"server.secret_key": secrets.token_urlsafe(32)})
