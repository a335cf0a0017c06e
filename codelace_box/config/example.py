"""The commented config file that `init` writes and codelace.toml.example shows, rendered from
the same field metadata as the schema, so the docs cannot drift from the code."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

from codelace_box.config.loading import (
    ENV_PREFIX,
    anchor_paths,
    build_config,
    config_from_data,
    load_config,
)
from codelace_box.config.schema import SECTIONS, Config
from codelace_box.config.secret import read_secret_file, secret_key_path
from codelace_box.errors import ConfigError
from codelace_box.private_files import replace_private_file, user_name


def _secret_in_use(target: Path, env: dict[str, str]) -> tuple[str, str] | None:
    """The server secret stored provider keys may already use, and where it was found."""
    config = None
    if target.exists():
        try:
            config = load_config(str(target), env)
        except ConfigError:
            config = _salvaged_config(target, env)
    # a file not written yet: its defaults as it will read them, relative paths under its folder
    # (realpath: a link that names itself is a missing file, not Path.resolve's RuntimeError)
    config = config or anchor_paths(
        build_config({}, "built-in defaults", env), Path(os.path.realpath(target)).parent
    )
    if config.server.secret_key:
        return config.server.secret_key, _secret_source(config, env)
    path = secret_key_path(config)
    try:
        there = path.is_file()
    except OSError:  # a data folder this user may not enter: reading it says so
        there = True
    existing = read_secret_file(path) if there else ""
    return (existing, str(path)) if existing else None


def _secret_source(config: Config, env: dict[str, str]) -> str:
    """Where the configured server secret came from: its variable when one set it (it wins
    over the file), else the config file."""
    for var, value in env.items():
        if var.upper() == SECRET_ENV and value == config.server.secret_key:
            return f"env {var}"
    return config.source


SECRET_ENV = f"{ENV_PREFIX}SERVER_SECRET_KEY"
# The keys that say where the secret in use is: kept from a file that fails to load as a whole.
_SECRET_KEYS = {"server": ("secret_key",), "database": ("path", "url")}
_SECTION_LINE = re.compile(r"^\s*\[\s*([A-Za-z_]+)\s*\]\s*(?:#.*)?$")
_STRING_LINE = re.compile(r"""^\s*(secret_key|path|url)\s*=\s*(?:"([^"\\\n]*)"|'([^'\n]*)')""")


def _loose_toml(text: str) -> dict[str, dict[str, str]]:
    """The secret's keys of a file that is not TOML any more, line by line: each plain string
    under the section header before it (secret_key wherever it is)."""
    data: dict[str, dict[str, str]] = {}
    section = ""
    for line in text.splitlines():
        if header := _SECTION_LINE.match(line):
            section = header.group(1)
        elif found := _STRING_LINE.match(line):
            key, value = found.group(1), found.group(2) or found.group(3) or ""
            where = "server" if key == "secret_key" else section
            if value and key in _SECRET_KEYS.get(where, ()):
                data.setdefault(where, {})[key] = value
    return data


def _unreadable(target: Path, exc: OSError) -> ConfigError:
    """`init --force` over a config file it cannot read (root's, 600): refused, not replaced."""
    try:
        whose = f"; it belongs to {user_name(target.stat().st_uid)}"
    except OSError:
        whose = ""
    return ConfigError(
        f"{target}: cannot read it ({exc.strerror}{whose}), so init cannot keep the server "
        "secret it may hold (the provider keys stored with it would be lost): run init as a "
        "user that may read it, or move the file away first to start anew"
    )


def _salvaged_config(target: Path, env: dict[str, str]) -> Config | None:
    """The secret's keys of a config file that does not load (`init --force` is how an operator
    replaces a file with a typo in it: the secret in it must not be lost with the rest). A bad
    value in one section loses nothing of the other: the secret itself, else its data folder."""
    try:
        text = target.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    except OSError as exc:  # a file of another user's: its secret would be replaced unseen
        raise _unreadable(target, exc) from None
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except ValueError:  # a TOMLDecodeError, or an integer too long for int() (4300 digits)
        data = _loose_toml(text)
    kept = {
        section: {k: v for k, v in body.items() if k in _SECRET_KEYS[section]}
        for section, body in data.items()
        if section in _SECRET_KEYS and isinstance(body, dict)
    }
    attempts = [kept, {"database": kept.get("database", {})}]
    if kept.get("server"):
        attempts.insert(1, {"server": kept["server"]})
    for attempt in attempts:
        with contextlib.suppress(ConfigError):
            return config_from_data(attempt, target, env)
    return None


def write_initial_config(target: Path, env: dict[str, str] | None = None) -> str | None:
    """Write `init`'s file (mode 600, atomically); returns where a reused secret came from.

    A secret already in use (in the file being replaced, or generated into the data
    directory by an earlier `serve`) is kept, so provider keys stored with it stay readable.
    A `target` that is a symbolic link is written through (the file it names is replaced, the
    link stays), as editors do; one that is (or names) no regular file is refused untouched.
    """
    if target.exists() and not target.is_file():  # never /dev/null replaced by a file
        raise ConfigError(
            f"{target}: not a regular file (a device, a socket, a folder): "
            "init writes only a file; name another path"
        )
    env = dict(os.environ) if env is None else env
    # an empty variable names no secret and no database (serve refuses the empty secret one)
    found = _secret_in_use(target, {var: value for var, value in env.items() if value.strip()})
    text = init_config_text(found[0] if found else None)
    written = Path(os.path.realpath(target)) if target.is_symlink() else target
    try:
        replace_private_file(written, text)
    except OSError as exc:
        raise ConfigError(f"{target}: cannot write: {exc.strerror}") from None
    return found[1] if found else None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + "".join(_toml_char(char) for char in str(value)) + '"'


_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _toml_char(char: str) -> str:
    """One character of a TOML basic string: quotes, backslashes and control characters (a
    secret from an env file may end in a line break) escaped, so the file always loads back."""
    if char in _TOML_ESCAPES:
        return _TOML_ESCAPES[char]
    return f"\\u{ord(char):04x}" if ord(char) < 0x20 or ord(char) == 0x7F else char


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
