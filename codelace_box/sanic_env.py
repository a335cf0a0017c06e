"""CODELACE_SANIC_<NAME>: Sanic's own settings from the environment, checked before serve listens.

Sanic keeps a value it cannot read as a number as a string: REQUEST_TIMEOUT=abc then raised a
TypeError on every connection's timeout check and timed no slow client out. A numeric setting
(a timeout, a size, a port) that is no finite number of at least 0 stops the start instead,
one line naming the variable.
"""

from __future__ import annotations

import math
import os

from codelace_box.errors import ConfigError

SANIC_ENV_PREFIX = "CODELACE_SANIC_"
BOX_NUMBERS = ("SEND_TIMEOUT",)  # the box's own Sanic setting (http_guard.py)


def numeric_settings() -> set[str]:
    """The Sanic settings whose value is a number (their default is one)."""
    from sanic.config import DEFAULT_CONFIG

    numbers = {
        name
        for name, value in DEFAULT_CONFIG.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    return numbers | set(BOX_NUMBERS)


def check_sanic_env(env: dict[str, str] | None = None) -> None:
    """Refuse a CODELACE_SANIC_ number (timeout, size) that is no finite number of at least 0."""
    env = dict(os.environ) if env is None else env
    numbers = numeric_settings()
    for var, value in sorted(env.items()):
        name = var[len(SANIC_ENV_PREFIX) :]
        if not var.startswith(SANIC_ENV_PREFIX) or name not in numbers:
            continue
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < 0:
            raise ConfigError(
                f"env {var}: Sanic's {name} must be a number of at least 0 (seconds for a "
                f"timeout), got {value!r}"
            )
