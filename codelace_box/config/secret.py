"""The server secret that encrypts provider keys at rest: configured, or generated once into
the data directory (mode 600; a data directory it creates is 700) and read back from there.
Also which secrets a config file others may read holds (serve warns about them)."""

from __future__ import annotations

import os
import secrets
import shlex
import stat
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

from codelace_box.errors import ConfigError
from codelace_box.private_files import make_private, make_private_dir, other_owner

if TYPE_CHECKING:
    from codelace_box.config.schema import Config


def secret_key_path(config: Config) -> Path:
    """Where a generated server secret lives: `secret_key` in the data directory."""
    return config.data_dir / "secret_key"


def existing_secret_key(config: Config) -> str | None:
    """The server secret if one is configured or was generated; never creates one."""
    if config.server.secret_key:
        return config.server.secret_key
    path = secret_key_path(config)
    return (read_secret_file(path) or None) if path.is_file() else None


def read_secret_file(path: Path) -> str:
    """The generated server secret in `path`, stripped; one line naming it if unreadable."""
    try:
        return path.read_bytes().decode("utf-8").strip()
    except UnicodeDecodeError:
        reason = "not UTF-8 text"
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if isinstance(exc, PermissionError):
            reason += _whose(path)
    raise ConfigError(f"{path}: cannot read the server secret: {reason}")


def _whose(path: Path) -> str:
    """' (FILE belongs to OWNER: chown it ...)' for a secret file of another user's (root ran
    serve once and wrote it: the next file to give over after the database's), or the same of
    its folder when this user may not enter it (root's data/, 700); else ''."""
    if (owner := other_owner(path)) is not None:
        return f" ({path} belongs to {owner}: chown it to the user running codelace-box)"
    if (owner := other_owner(path.parent)) is not None:
        return (
            f" (its folder {path.parent} belongs to {owner}: chown it to the user running "
            "codelace-box)"
        )
    return ""


def ensure_secret_key(config: Config) -> str:
    """The server secret: from config, else read from (or generated into) the data directory."""
    if config.server.secret_key:
        return config.server.secret_key
    path = secret_key_path(config)
    if not path.exists():
        make_private_dir(path.parent)
        staged = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
        try:
            os.link(staged, path)  # atomic, and never replaces a secret another process wrote
        except FileExistsError:
            pass
        finally:
            staged.unlink()
    if not path.is_file() and not path.is_dir():  # a folder: "cannot read", below
        raise ConfigError(
            f"{path}: the server secret file is not a regular file (a device, a pipe or a "
            "socket): remove it, or set server.secret_key"
        )
    make_private(path)
    key = read_secret_file(path)
    if not key:
        raise ConfigError(f"{path}: the server secret file is empty; set server.secret_key")
    return key


# The config keys whose values are secrets (a webhook URL carries its token in the path; a
# database URL its password)
SECRET_SETTINGS = (
    ("server", "secret_key"),
    ("stripe", "secret_key"),
    ("stripe", "webhook_secret"),
    ("email", "smtp_password"),
    ("metrics", "token"),
    ("alerts", "webhook_url"),
    ("database", "url"),
)


def secrets_others_may_read(path: Path) -> list[str]:
    """The secret settings (`section.key`) the config file at `path` sets while its group or
    others may read it; [] when it is private, sets none, or cannot be read."""
    try:
        if not stat.S_IMODE(path.stat().st_mode) & 0o044:
            return []
        data = tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except (OSError, ValueError):  # not UTF-8, not TOML, or an integer too long for int()
        return []
    found = []
    for section, key in SECRET_SETTINGS:
        table = data.get(section)
        value = table.get(key) if isinstance(table, dict) else None
        if value and (key != "url" or "@" in str(value)):  # sqlite:///PATH holds no password
            found.append(f"{section}.{key}")
    return found


def readable_secrets_notice(config: Config) -> str | None:
    """serve's one line when its config file holds secrets its group or other users may read."""
    path = Path(config.source)
    exposed = secrets_others_may_read(path) if path.is_file() else []
    if not exposed:
        return None
    return (
        f"{path} holds {', '.join(exposed)} and other users of this machine may read it: "
        f"chmod 600 {shlex.quote(str(path))}"
    )
