"""Log output that never blocks serving: a bounded buffer per output, written out by a thread.

`serve` writes its log to stdout/stderr, often a pipe to a log shipper or a terminal. A reader
that stops reading (a hung shipper, `serve | slow-consumer`, Ctrl-S in the terminal) fills the
pipe, and a blocking write there would stop the event loop with it: no request answered. So in
`serve` every log handler writing to stdout or stderr writes into a `LogWriter` instead
(`unblock_log_output`): a line is written at once when nothing waits before it and the output
has room for it (so it is in the log before the request that logged it is answered: a console
sign-in code, a warning), else appended to a buffer under a lock (the event loop's only cost)
that a thread of the writer's own writes to the file descriptor as soon as it can.

The buffer holds at most LIMIT_CHARS characters; while it is full (the reader stalled) new
lines are dropped and counted (and `count_drops_with`'s metric told). Once output flows again, one
line says how many were dropped, where they would have been. At exit (`close_all`, after the
last lines) each thread writes what is left, waiting at most EXIT_WAIT_SEC for a reader that
still does not read. A closed output (EPIPE) or a full disk loses the lines, never a request.
stdout and stderr that are one file (`serve > log 2>&1`, a terminal) share one writer, so
their lines keep their order.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

LIMIT_CHARS = 256 * 1024  # per output: about 1,500 access lines
EXIT_WAIT_SEC = 3.0
DROPPED_MESSAGE = "the log's reader stalled: dropped %d log lines here"
_GONE = frozenset({errno.EPIPE, errno.EBADF, errno.EINVAL})  # nobody reads, ever again


class LogWriter:
    """A text stream for log handlers whose writes never block (see the module doc)."""

    def __init__(self, fd: int, encoding: str, limit: int = LIMIT_CHARS) -> None:
        self.fd, self.encoding, self._limit = fd, encoding, limit
        self._lock = threading.Lock()  # over the fields below
        # released once for each time _pending stops being empty (and at close): the thread
        # waits on it (plain locks: a Condition's wait and notify cost ten times as much)
        self._ready = threading.Lock()
        self._ready.acquire()
        self._pending: list[str] = []
        self._size = 0  # characters in _pending
        self._dropped = 0  # lines dropped since the last said so
        self._closing = False
        self._writing = False  # the thread is writing a batch out
        self._start()

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"codelace-log-{self.fd}", daemon=True
        )
        self._thread.start()

    def write(self, text: str) -> int:
        """Keep `text` for the thread to write, or drop it when the buffer is full."""
        with self._lock:
            if self._written_now(text):
                return len(text)
            if self._size + len(text) <= self._limit:
                self._pending.append(text)
                self._size += len(text)
                if len(self._pending) == 1 and not self._closing:
                    self._ready.release()
                return len(text)
            lines = text.count("\n") or 1
            self._dropped += lines
        _SETTINGS.on_drop(lines)
        return len(text)

    def _written_now(self, text: str) -> bool:
        """Under the lock: `text` written at once, when nothing waits to be written before it
        and the output has room for all of it (a write of at most PIPE_BUF bytes to a pipe
        or a terminal that select() finds writable does not block); False: the thread's."""
        if self._pending or self._writing or self._dropped or self._closing or not self._limit:
            return False
        data = text.encode(self.encoding, "backslashreplace")
        if len(data) > select.PIPE_BUF or not _has_room(self.fd):
            return False
        try:
            written = os.write(self.fd, data)
        except OSError:  # the thread meets it again and counts what is lost
            return False
        if written < len(data):  # a disk filling up: the rest of the line is lost
            self._dropped += 1
        return True

    def flush(self) -> None:
        """Nothing to do: the thread writes the lines as they come."""

    def fileno(self) -> int:
        return self.fd

    def close(self, wait: float) -> None:
        """Let the thread write what is left and end, waiting at most `wait` seconds."""
        with self._lock:
            if not self._pending and not self._closing:  # else released already
                self._ready.release()
            self._closing = True
        self._thread.join(max(wait, 0.0))

    def _run(self) -> None:
        while True:
            if not self._closing:
                self._ready.acquire()
            with self._lock:
                if not self._pending and not self._dropped:
                    return
                text, told = "".join(self._pending), self._dropped
                self._pending, self._size, self._dropped = [], 0, 0
                self._writing = True
            if told:  # the lines after these are the ones that were dropped
                text += dropped_line(told)
            unwritten = self._write_out(text.encode(self.encoding, "backslashreplace"))
            with self._lock:
                self._writing = False
            if unwritten:  # lost (a full disk, a closed pipe): said when output flows again
                lost = max(unwritten - (1 if told else 0), 0) + told
                with self._lock:
                    self._dropped += lost
                _SETTINGS.on_drop(lost - told)
                if self._closing:
                    return

    def _write_out(self, data: bytes) -> int:
        """Write all of `data`, whole lines at a time, in writes of at most PIPE_BUF bytes
        where the lines fit: a pipe takes such a write whole, so the lines of two workers
        sharing it (`serve --workers 2 | shipper`) never cut into each other's, as one large
        write does once the pipe is full. The number of its lines not written."""
        view, start = memoryview(data), 0
        while start < len(data):
            end = _piece_end(data, start)
            try:
                start += os.write(self.fd, view[start:end])
            except BlockingIOError:  # someone made our output non-blocking: wait for room
                select.select([], [self.fd], [], 1.0)
            except OSError as error:
                if error.errno in _GONE:
                    self._limit = 0  # nobody will read: keep nothing from now on
                else:
                    time.sleep(0.1)  # a full disk: not again at once
                return data.count(b"\n", start) or 1
        return 0


def _piece_end(data: bytes, start: int) -> int:
    """Where the next write of `data` from `start` ends: after its last whole line within
    PIPE_BUF bytes, or after its first line when that one alone is longer."""
    if len(data) - start <= select.PIPE_BUF:
        return len(data)
    cut = data.rfind(b"\n", start, start + select.PIPE_BUF)
    if cut < 0:
        cut = data.find(b"\n", start)
    return len(data) if cut < 0 else cut + 1


def _has_room(fd: int) -> bool:
    """Whether a write to `fd` would not block now (a regular file: always)."""
    try:
        return bool(select.select([], [fd], [], 0)[1])
    except (OSError, ValueError):
        return False


def _uncounted(lines: int) -> None:
    """Dropped lines counted nowhere but in the log (until `count_drops_with`)."""


class _Settings:
    """How a drop is told: the line's format (log.format's), and the count (a metric)."""

    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    on_drop: Callable[[int], Any] = staticmethod(_uncounted)


_SETTINGS = _Settings()
_WRITERS: dict[tuple[int, int], LogWriter] = {}  # by the file written (device, inode)


def dropped_line(count: int) -> str:
    """The line saying `count` lines were dropped, as our handler would log it."""
    record = logging.LogRecord(
        "codelace_box.log", logging.WARNING, __file__, 0, DROPPED_MESSAGE, (count,), None
    )
    return _SETTINGS.formatter.format(record) + "\n"


def report_with(formatter: logging.Formatter) -> None:
    """The dropped-lines line in this format (log.format's)."""
    _SETTINGS.formatter = formatter


def count_drops_with(count: Callable[[int], Any]) -> None:
    """`count(lines)` for each batch of lines dropped (serve: a metric's inc)."""
    _SETTINGS.on_drop = count


def unblock_log_output() -> None:
    """From now on every handler writing to stdout or stderr writes through a LogWriter."""
    for handler in _all_handlers():
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler.stream, LogWriter):
            writer = _writer_for(handler.stream)
            if writer is not None:
                handler.setStream(writer)


def _all_handlers() -> list[logging.Handler]:
    loggers = [logging.getLogger(), *logging.root.manager.loggerDict.values()]
    return [h for lg in loggers if isinstance(lg, logging.Logger) for h in lg.handlers]


def _writer_for(stream: Any) -> LogWriter | None:
    """The writer of stdout or stderr (one for both when they are one file); None for any
    other stream."""
    if not any(stream is s for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)):
        return None
    try:
        fd = stream.fileno()
        found = os.fstat(fd)
        stream.flush()  # what it holds goes out before what the writer will write
    except (OSError, ValueError, AttributeError):
        return None
    key = (found.st_dev, found.st_ino)  # serve's main thread alone calls this
    if key not in _WRITERS:
        _WRITERS[key] = LogWriter(fd, getattr(stream, "encoding", None) or "utf-8")
    return _WRITERS[key]


def close_all(wait: float = EXIT_WAIT_SEC) -> None:
    """At exit: every writer writes what it holds, within `wait` seconds in all."""
    ends_at = time.monotonic() + wait
    for writer in list(_WRITERS.values()):
        writer.close(ends_at - time.monotonic())


def _restart_in_child() -> None:
    """A forked child has none of its parent's threads: each writer gets a new one."""
    for writer in _WRITERS.values():
        writer._lock, writer._ready = threading.Lock(), threading.Lock()
        writer._ready.acquire()
        writer._pending, writer._size, writer._dropped = [], 0, 0  # the parent's to write
        writer._writing = False
        writer._start()


os.register_at_fork(after_in_child=_restart_in_child)
