"""The workers' metric values files (several workers: prometheus_client's multiprocess mode),
their bytes allocated before they are written.

prometheus_client maps each file into memory and grows it with truncate(), which allocates
nothing: on a full disk (the metrics folder is in the temporary directory, often a small
tmpfs) the first write to a page of it killed the worker with SIGBUS, its calls in flight
unanswered and unsettled (the upstream's work unbilled, the holds left to a sweep). Here every
byte is allocated (posix_fallocate) before it is mapped; a value no room can be had for is kept
in this worker's memory instead (missing from the scrapes of the other workers, said once).
"""

from __future__ import annotations

import errno
import logging
import os
from typing import Any

from prometheus_client import values
from prometheus_client.mmap_dict import MmapedDict

log = logging.getLogger("codelace_box.metrics")
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # other errors: allocated as before
FIRST_BYTES = 1 << 16  # a file's first size, as prometheus_client's: hundreds of values


class AllocatedValues(MmapedDict):
    """prometheus_client's values file whose bytes are allocated before they are mapped."""

    def __init__(self, filename: str, read_mode: bool = False) -> None:
        self._in_memory: dict[str, tuple[float, float]] = {}
        self._detached = False
        if not read_mode:
            try:
                _allocate(filename, FIRST_BYTES)
            except OSError as exc:  # another error (a disk that allocates nothing ahead):
                if exc.errno in NO_ROOM:  # the file as prometheus_client makes it
                    self._detached, self._positions = True, {}
                    _no_room(filename, exc)
                    return
        super().__init__(filename, read_mode)

    def _init_value(self, key: str) -> None:
        if self._detached:
            self._in_memory[key] = (0.0, 0.0)
            return
        encoded = len(key.encode("utf-8"))
        size = 4 + encoded + (8 - (encoded + 4) % 8) + 16  # as MmapedDict lays an entry out
        capacity = self._capacity
        while self._used + size > capacity:
            capacity *= 2
        if capacity > self._capacity:
            try:
                os.posix_fallocate(self._f.fileno(), 0, capacity)
            except OSError as exc:
                if exc.errno in NO_ROOM:
                    _no_room(self._fname, exc)
                    self._in_memory[key] = (0.0, 0.0)
                    return
        super()._init_value(key)

    def read_value(self, key: str) -> Any:
        if key not in self._positions and key not in self._in_memory:
            self._init_value(key)
        if key in self._in_memory:
            return self._in_memory[key]
        return super().read_value(key)

    def write_value(self, key: str, value: float, timestamp: float) -> None:
        if key not in self._positions and key not in self._in_memory:
            self._init_value(key)
        if key in self._in_memory:
            self._in_memory[key] = (value, timestamp)
            return
        super().write_value(key, value, timestamp)

    @property
    def holds_every_value(self) -> bool:
        """Whether every value is in the file (none kept in memory for want of room)."""
        return not self._detached and not self._in_memory

    def close(self) -> None:
        if not self._detached:
            super().close()


def _allocate(filename: str, size: int) -> None:
    """The file made at least `size` bytes long, every byte allocated (OSError: no room). A new
    file is made whole under another name, then renamed into place: the other workers' scrapes
    read every values file in the folder, and an empty one failed them."""
    try:
        fd = os.open(filename, os.O_RDWR)
    except FileNotFoundError:  # only this process makes its files (their names hold its pid)
        _make_whole(filename, size)
        return
    had = 0
    try:
        had = os.fstat(fd).st_size
        os.posix_fallocate(fd, 0, max(size, had))
    except OSError:
        if not had:
            os.unlink(filename)
        raise
    finally:
        os.close(fd)


def _make_whole(filename: str, size: int) -> None:
    folder, name = os.path.split(filename)
    staged = os.path.join(folder, f".{name}.{os.getpid()}.new")  # not *.db: no scrape reads it
    fd = os.open(staged, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
        os.replace(staged, filename)
    except OSError:
        os.unlink(staged)
        raise
    finally:
        os.close(fd)


class _Said:
    """Whether this process said it has no room for its metric values."""

    done = False


def _no_room(filename: str, exc: OSError) -> None:
    if not _Said.done:
        _Said.done = True
        log.error(
            "no room for metric values in %s (%s): this worker keeps new ones in its own "
            "memory, which /metrics answered by another worker does not show; free space on "
            "that disk (the temporary directory)",
            os.path.dirname(filename),
            exc.strerror or exc,
        )


def install() -> None:
    """Make prometheus_client write its values files through AllocatedValues (before any
    value of a multiprocess metric is made)."""
    values.MmapedDict = AllocatedValues  # type: ignore[misc]
