"""Sanic's own loggers (`sanic.root`, `sanic.error`, `sanic.server`, ...), set up beside ours.

They keep their handlers and do not propagate: the root logger has our handler (so the
warnings of the libraries beneath, asyncio, aiohttp, psycopg, are lines of ours;
logformat.configure_logging), and a Sanic line must not be printed a second time there. With
`log.format = "json"` their lines are our JSON lines, on stderr; with "text" they keep Sanic's
own look and streams. Their level is log.level, as ours: `error` leaves out "Starting worker"
and the like.
"""

from __future__ import annotations

import sys
from typing import Any

from sanic.log import LOGGING_CONFIG_DEFAULTS

from codelace_box.config import Config
from codelace_box.logformat import JsonFormatter, configured_level


def sanic_log_config(config: Config) -> dict[str, Any]:
    """The `log_config` Sanic is created with (each worker makes its own)."""
    json_lines = config.log.format == "json"
    defaults = LOGGING_CONFIG_DEFAULTS
    handlers = {  # streams by name (`ext://`): the workers get a pickled copy of this
        name: {k: v for k, v in handler.items() if k != "stream"}
        | {"stream": "ext://sys.stderr" if json_lines else _stream_name(handler.get("stream"))}
        for name, handler in defaults["handlers"].items()
    }
    formatters = (
        {name: {"()": JsonFormatter} for name in defaults["formatters"]}
        if json_lines
        else defaults["formatters"]
    )
    level = configured_level(config.log.level)
    loggers = {
        name: logger | {"propagate": False, "level": level}
        for name, logger in defaults["loggers"].items()
    }
    return dict(defaults) | {"handlers": handlers, "formatters": formatters, "loggers": loggers}


def _stream_name(stream: Any) -> str:
    """Sanic's default stream of a handler, by name: stderr for its error lines, else stdout."""
    return "ext://sys.stderr" if stream in (sys.stderr, sys.__stderr__) else "ext://sys.stdout"
