"""How serve's log lines look: text (time, level, logger: message) or JSON, one object a line.

Our loggers (`codelace_box.*`) get one handler on stderr, once per process. An access line (the
logger `codelace_box.access`) carries its fields as `extra={"access": {...}}`; in JSON they
become top-level keys (request_id, method, route, status, duration_ms, model, user_id,
key_prefix), in text they are already in the message. Nothing secret is ever put in a record:
the access fields are chosen, never copied from the request.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVEL_ENV = "CODELACE_LOG_LEVEL"


class _SecondCache:
    """The text of the current second, made once a second (a log line a request needs it)."""

    __slots__ = ("_render", "_second", "_text")

    def __init__(self, render: Callable[[float], str]) -> None:
        self._second, self._text, self._render = -1, "", render

    def __call__(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            self._second, self._text = second, self._render(second)
        return self._text


def _iso_second(second: float) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


class TextFormatter(logging.Formatter):
    """`time level logger: message`, the time in local time to the millisecond."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._second = _SecondCache(lambda s: time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(s)))

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return f"{self._second(record.created)},{int(record.msecs):03d}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (ISO UTC), level, logger, message, the access fields,
    and a traceback as `exc_info` when there is one."""

    def __init__(self) -> None:
        super().__init__()
        self._second = _SecondCache(_iso_second)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": f"{self._second(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "access", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"), default=str)


def configure_logging(log_format: str = "text", level: str | None = None) -> None:
    """Our log lines to stderr in `log_format`, once per process (workers call it too).

    Only our own logger gets a handler: Sanic's loggers keep theirs, so nothing is printed
    twice. The level: $CODELACE_LOG_LEVEL, else `level`, else INFO.
    """
    logger = logging.getLogger("codelace_box")
    if any(getattr(h, "_codelace", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler()
    formatter = JsonFormatter() if log_format == "json" else TextFormatter()
    handler.setFormatter(formatter)
    handler._codelace = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel((os.environ.get(LEVEL_ENV) or level or "INFO").upper())
    logger.propagate = False
