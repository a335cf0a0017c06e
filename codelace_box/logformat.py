"""How serve's log lines look: text (time, level, logger: message) or JSON, one object a line.

Our loggers (`codelace_box.*`) get one handler on stderr, once per process. An access line (the
logger `codelace_box.access`) carries its fields as `extra={"access": {...}}`; in JSON they
become top-level keys (request_id, method, route, status, duration_ms, model, user_id,
key_prefix), in text they are already in the message. Nothing secret is ever put in a record:
the access fields are chosen, never copied from the request.

Access lines, one a request, skip the logging module (`write_access`): made here the way our
handler's formatter makes them, kept for the rest of the event-loop turn and written to its
stream in one call at its end. A record, its handler lock and a write and flush of its own
cost about 25 µs a request (3-5% of a request's CPU); this costs a few.

In `serve` the handler's stream (and Sanic's) is a `logwriter.LogWriter`: a write only appends
to a bounded buffer that a thread writes out, so a log reader that stalls never stops the event
loop (its lines are dropped and counted instead; logwriter.py).

Any other line logged while a request is served (an upstream's error, a failed Stripe call)
names the request too: serve sets `REQUEST_ID` as the request starts, and the JSON line gets it
as `request_id`, the text line ends with `request=...` (unless its message names it already).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import re
import time
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from codelace_box import logwriter

# characters a JSON line may not hold raw: DEL and the C1 controls, the Unicode line breaks,
# and the direction marks, embeddings, overrides and isolates (a viewer reverses the line)
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVEL_ENV = "CODELACE_LOG_LEVEL"
# the request being served in this context (serve sets it as each request starts)
REQUEST_ID: ContextVar[str | None] = ContextVar("codelace_request_id", default=None)


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

    def format(self, record: logging.LogRecord) -> str:
        """The line, naming the request it was logged for (if its message does not)."""
        line = super().format(record)
        request_id = REQUEST_ID.get()
        if request_id is None or request_id in line:
            return line
        head, newline, rest = line.partition("\n")  # before a traceback, if any
        return f"{head} request={request_id}{newline}{rest}"

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The line without its traceback: a line break in the message (an upstream's error
        text, perhaps echoing a client's) is written as \\n, so it cannot start a line that
        reads as one of ours, and any other character that is not printable (an ESC that
        begins a terminal escape sequence, which repaints or erases the operator's screen) as
        its escape."""
        message = record.message
        if not message.isprintable():
            record.message = "".join(
                char if char.isprintable() else escaped(char) for char in message
            )
        return super().formatMessage(record)

    def access_line(self, created: float, name: str, message: str) -> str:
        """The line `format` makes of an INFO record, with its newline."""
        msecs = int((created - int(created)) * 1000)
        return f"{self._second(created)},{msecs:03d} INFO {name}: {message}\n"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (ISO UTC), level, logger, message, the request id
    (the context's, else the record's own `request_id`: a line logged for a request from a
    batch of every request's writes), the access fields, and a traceback as `exc_info`."""

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
        request_id = REQUEST_ID.get() or getattr(record, "request_id", None)
        if request_id is not None:
            line["request_id"] = request_id
        fields = getattr(record, "access", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return _json_line(line)

    def access_line(self, created: float, name: str, message: str, fields: dict[str, Any]) -> str:
        """The line `format` makes of an INFO access record, with its newline."""
        msecs = int((created - int(created)) * 1000)
        line: dict[str, object] = {
            "time": f"{self._second(created)}.{msecs:03d}Z",
            "level": "info",
            "logger": name,
            "message": message,
        }
        line.update(fields)
        return _json_line(line) + "\n"


def escaped(char: str) -> str:
    """A character a line may not show raw as its Python escape (`\\x1b`, `\\u202e`), as a
    text log line writes it; upstream error words reach clients so too (crypto.mask_in)."""
    return char.encode("unicode_escape").decode("ascii")


def _json_line(line: dict[str, object]) -> str:
    """One JSON object on one line: JSON escapes only the controls below 0x20, so the line
    breaks beyond them (U+2028, U+2029, NEL), the C1 controls (CSI drives a terminal as
    ESC [ does) and the bidirectional controls (U+202E shows the rest of a line reversed) are
    escaped here too."""
    text = json.dumps(line, ensure_ascii=False, separators=(",", ":"), default=str)
    if _JSON_UNSAFE.search(text) is None:
        return text
    return _JSON_UNSAFE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def configure_logging(log_format: str = "text", level: str | None = None) -> None:
    """Our log lines to stderr in `log_format`, once per process (workers call it too).

    Our own logger gets a handler, and the root logger too (the same one), so the warnings of
    the libraries beneath (asyncio, aiohttp, psycopg, peewee) are lines of ours as well (JSON,
    or text with time, level and logger), not Python's bare last-resort text; Sanic's loggers
    keep theirs and do not propagate (sanic_logging.py), so nothing is printed twice. The level:
    $CODELACE_LOG_LEVEL, else `level`, else INFO (the libraries' stays WARNING, the root's).
    """
    logger = logging.getLogger("codelace_box")
    if any(getattr(h, "_codelace", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler()
    formatter = JsonFormatter() if log_format == "json" else TextFormatter()
    handler.setFormatter(formatter)
    handler._codelace = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logging.getLogger().addHandler(handler)
    _ACCESS.attach(handler, formatter)
    logwriter.report_with(formatter)
    logger.setLevel(configured_level(level))
    # the libraries' lines (the root's level): their warnings and up, none under log.level
    logging.getLogger().setLevel(max(logging.WARNING, logger.level))
    logger.propagate = False


def configured_level(level: str | None = None) -> str:
    """The lowest level written: $CODELACE_LOG_LEVEL, else `level` (log.level), else INFO."""
    return (os.environ.get(LEVEL_ENV) or level or "INFO").upper()


class _AccessLines:
    """Access lines straight to our handler's stream, written once per event-loop turn."""

    def __init__(self) -> None:
        self._handler: logging.StreamHandler[Any] | None = None
        self._formatter: TextFormatter | JsonFormatter | None = None
        self._pending: list[str] = []

    def attach(self, handler: logging.StreamHandler[Any], formatter: logging.Formatter) -> None:
        self._handler = handler
        self._formatter = (
            formatter if isinstance(formatter, TextFormatter | JsonFormatter) else None
        )

    def write(self, logger: logging.Logger, message: str, fields: dict[str, Any] | None) -> bool:
        """Queue the access line of `logger` (INFO); False when our handler is not the one
        that would write it (another set-up: the caller logs it the usual way), or when it
        writes JSON and `fields` is None."""
        formatter = self._formatter
        if formatter is None or logger.handlers or not _ours_alone(logger, self._handler):
            return False
        created = time.time()
        if isinstance(formatter, JsonFormatter):
            if fields is None:
                return False
            line = formatter.access_line(created, logger.name, message, fields)
        else:
            line = formatter.access_line(created, logger.name, message)
        self._pending.append(line)
        if len(self._pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop: now
                self.flush()
        return True

    def flush(self) -> None:
        """Write the lines kept so far."""
        if not self._pending or self._handler is None:
            return
        text, self._pending = "".join(self._pending), []
        stream = self._handler.stream
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # a closed stream: as logging would, go on serving
            pass


def _ours_alone(logger: logging.Logger, handler: logging.Handler | None) -> bool:
    """The record of `logger` would go to our handler and nowhere else."""
    parent = logger.parent
    return (
        handler is not None
        and logger.propagate
        and parent is not None
        and parent.handlers == [handler]
        and not parent.propagate
        and not logger.filters
        and not parent.filters
        and logger.isEnabledFor(logging.INFO)
    )


_ACCESS = _AccessLines()


def _at_exit() -> None:
    """The access lines kept, then everything the log writers hold (serve), out."""
    _ACCESS.flush()
    logwriter.close_all()


atexit.register(_at_exit)


def write_access(logger: logging.Logger, message: str, fields: dict[str, Any] | None) -> bool:
    """Write an access line of `logger` the fast way; False: log it the usual way (with its
    fields, which a JSON line needs: None is enough only for a text line)."""
    return _ACCESS.write(logger, message, fields)


def access_fields_wanted() -> bool:
    """Whether an access line needs its fields: unless our handler writes text (a JSON line
    has them as keys; another set-up gets them on its record)."""
    return not isinstance(_ACCESS._formatter, TextFormatter)
