"""Sanic's own loggers (`sanic.root`, `sanic.error`, `sanic.server`, ...), set up beside ours.

They keep their handlers and do not propagate: the root logger has our handler (so the
warnings of the libraries beneath, asyncio, aiohttp, psycopg, are lines of ours;
logformat.configure_logging), and a Sanic line must not be printed a second time there. Their
lines are ours, on stderr: JSON lines with `log.format = "json"`, with "text" our text lines
(time, level, logger, message: not Sanic's own look, a second format in the log). Their level
is log.level, as ours: `error` leaves out "Starting worker" and the like.
"""

from __future__ import annotations

from typing import Any

from sanic.log import LOGGING_CONFIG_DEFAULTS

from codelace_box.config import Config
from codelace_box.logformat import JsonFormatter, TextFormatter, configured_level


def sanic_log_config(config: Config) -> dict[str, Any]:
    """The `log_config` Sanic is created with (each worker makes its own)."""
    formatter = JsonFormatter if config.log.format == "json" else TextFormatter
    defaults = LOGGING_CONFIG_DEFAULTS
    handlers = {  # streams by name (`ext://`): the workers get a pickled copy of this
        name: {k: v for k, v in handler.items() if k != "stream"} | {"stream": "ext://sys.stderr"}
        for name, handler in defaults["handlers"].items()
    }
    formatters = {name: {"()": formatter} for name in defaults["formatters"]}
    level = configured_level(config.log.level)
    loggers = {
        name: logger | {"propagate": False, "level": level}
        for name, logger in defaults["loggers"].items()
    }
    return dict(defaults) | {"handlers": handlers, "formatters": formatters, "loggers": loggers}
