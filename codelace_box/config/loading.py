"""Reading the configuration: the file named by --config, $CODELACE_CONFIG or ./codelace.toml,
then CODELACE_<SECTION>_<KEY> overrides, validated into a `Config` (ConfigError names the
source, the key and what was expected)."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import os
import tomllib
from pathlib import Path
from typing import Any

from codelace_box.config.rules import check_combinations, imply_defaults, trim_line_ends
from codelace_box.config.schema import SECTIONS, Config
from codelace_box.config.toml_words import toml_refusal
from codelace_box.config.values import build_section, read_value
from codelace_box.errors import ConfigError

ENV_PREFIX = "CODELACE_"
CONFIG_ENV = "CODELACE_CONFIG"
NAME_A_FILE = "name a config file (a TOML file, such as ./codelace.toml)"
DEFAULT_CONFIG_FILE = "codelace.toml"


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
        raise ConfigError(f"{path}: not valid TOML{toml_refusal(str(exc), text)}") from None
    except ValueError:  # int() refuses over 4300 digits, and tomllib passes that error on
        raise ConfigError(f"{path}: not valid TOML: an integer of more than 4300 digits") from None
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
            _refuse_near_miss(var, rest)
            continue
        section, key = matched, rest[len(matched) + 1 :]
        if key in raw[section] and not origin[section][key].startswith("env "):
            # the file's value, overridden, is still the file's: a mistake in it is refused
            read_value(section, SECTIONS[section], key, raw[section][key], source)
        _refuse_clearing(var, section, key, value, raw[section].get(key, _DEFAULT))
        raw[section][key] = value
        origin[section][key] = f"env {var}"
    return raw, origin


_DEFAULT = object()  # no value in the file: the key's default is what a variable replaces
# Cleared by accident, these lose data: another secret (stored provider keys unreadable), a
# new SQLite file in place of the PostgreSQL database
_NOT_CLEARED_BY_EMPTY = {("server", "secret_key"), ("database", "url")}


def _refuse_clearing(var: str, section: str, key: str, value: str, current: Any) -> None:
    """An empty variable (docker compose passes an unset `${X}` on as one) is refused where it
    would clear the server secret or the database URL the file sets; elsewhere empty is a
    value (an empty Stripe key: Stripe off; an empty list: none)."""
    if value.strip() or (section, key) not in _NOT_CLEARED_BY_EMPTY:
        return
    if current is not _DEFAULT and current:
        raise ConfigError(
            f"env {var}: empty, which would clear {section}.{key} (an unset variable passed "
            f"on by docker compose is an empty one): unset {var} to keep the value"
        )


def _refuse_near_miss(var: str, rest: str) -> None:
    """A CODELACE_ variable naming no section is someone else's (CODELACE_DEBUG, the
    CODELACE_SANIC_ settings), unless it is a real key under a near miss of its section
    (CODELACE_SERVR_PORT, CODELACE_SERVERPORT): one the operator meant to set, refused."""
    head, _, key = rest.partition("_")
    guesses = [(s, f"{head[len(s) :]}_{key}".strip("_")) for s in SECTIONS if head.startswith(s)]
    guesses += [(s, key) for s in difflib.get_close_matches(head, SECTIONS, n=1, cutoff=0.8)]
    for section, name in guesses:
        if name in {field.name for field in dataclasses.fields(SECTIONS[section])}:
            raise ConfigError(
                f"env {var}: unknown section {head} (did you mean "
                f"{ENV_PREFIX}{section.upper()}_{name.upper()}?)"
            )


def resolve_config_path(explicit: str | None, env: dict[str, str] | None = None) -> Path | None:
    """The config file to read: --config, else $CODELACE_CONFIG, else ./codelace.toml if present."""
    env = dict(os.environ) if env is None else env
    if explicit:
        return Path(explicit)
    if env.get(CONFIG_ENV) == "-":  # not standard input, nor a file of that name (`init`)
        raise ConfigError(f"${CONFIG_ENV}: '-' (standard input) is not taken: {NAME_A_FILE}")
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    default = Path(DEFAULT_CONFIG_FILE)  # a dangling link to it is a missing file, not none
    return default if os.path.lexists(default) else None


SQLITE_URL = "sqlite:///"


def load_config(explicit: str | None = None, env: dict[str, str] | None = None) -> Config:
    """Read, merge and validate the configuration; raises ConfigError on any problem."""
    env = dict(os.environ) if env is None else env
    path = resolve_config_path(explicit, env)
    if path is None:
        return config_from_data({}, path, env)
    try:
        data = _read_file(path)
    except ConfigError as exc:
        if explicit or not env.get(CONFIG_ENV) or not str(exc).endswith("not found"):
            raise
        raise ConfigError(f"{exc} (named by ${CONFIG_ENV})") from None
    return config_from_data(data, path, env)


def config_from_data(data: dict[str, Any], path: Path | None, env: dict[str, str]) -> Config:
    """A Config from parsed TOML `data` read from `path` (None: no file), with `env` overrides
    and relative paths anchored at the file's folder."""
    config = build_config(data, str(path) if path else "built-in defaults", env)
    return _anchor_database_path(config, path)


def _anchor_database_path(config: Config, path: Path | None) -> Config:
    """A relative database path (and backup folder, and SMTP CA file) read with a config file
    is relative to that file's folder (to the working folder with one that is no regular
    file)."""
    # a config that is no file (/dev/null, a shell's <(...)) has no folder of its own: as none
    folder = path.resolve().parent if path is not None and path.is_file() else None
    return anchor_paths(config, folder)


def anchor_paths(config: Config, folder: Path | None) -> Config:
    """`config` with its relative database path, backup folder and SMTP CA file under
    `folder` (None: left relative, to the working folder), a leading ~ the home folder (a
    `sqlite:///PATH` database.url becomes database.path first: one name for the file)."""
    if config.database.url.startswith(SQLITE_URL):
        sqlite_path = config.database.url.removeprefix(SQLITE_URL)
        database = dataclasses.replace(config.database, path=sqlite_path, url="")
        config = dataclasses.replace(config, database=database)
    database = dataclasses.replace(config.database, path=_anchored(config.database.path, folder))
    backup = dataclasses.replace(config.backup, dir=_anchored(config.backup.dir, folder))
    config = dataclasses.replace(config, database=database, backup=backup)
    if ca_file := config.email.smtp_ca_file:
        email = dataclasses.replace(config.email, smtp_ca_file=_anchored(ca_file, folder))
        config = dataclasses.replace(config, email=email)
    return config


def _anchored(name: str, folder: Path | None) -> str:
    """`name` with a leading ~ expanded, under `folder` when relative (None: left relative)."""
    expanded = Path(name)
    if name == "~" or name.startswith("~/"):  # not ~user: the box's own user only
        with contextlib.suppress(RuntimeError):  # no home folder to be found: as written
            expanded = expanded.expanduser()
    if expanded.is_absolute() or folder is None:
        return name if expanded == Path(name) else str(expanded)
    return str(folder / expanded)


def build_config(data: dict[str, Any], source: str, env: dict[str, str]) -> Config:
    """Validate parsed TOML `data` (from `source`) with `env` overrides into a Config."""
    raw, origin = _collect(data, source, env)
    sections = {
        name: build_section(name, cls, raw[name], origin[name]) for name, cls in SECTIONS.items()
    }
    config = imply_defaults(trim_line_ends(Config(source=source, **sections)), origin)
    check_combinations(config, origin)
    return config
