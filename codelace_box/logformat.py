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
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVEL_ENV = "CODELACE_LOG_LEVEL"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (ISO UTC), level, logger, message, the access fields,
    and a traceback as `exc_info` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, object] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
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
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    handler.setFormatter(formatter)
    handler._codelace = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel((os.environ.get(LEVEL_ENV) or level or "INFO").upper())
    logger.propagate = False
