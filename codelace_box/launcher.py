"""The one-file binary's launcher (PyInstaller's bootloader: the process an operator starts,
which unpacks the program and runs it as its child) and the signals it brings.

The launcher forwards every signal it gets to the program. Ctrl-C and a hangup reach the
terminal's whole foreground process group, the launcher included, so the program gets the
one stop twice, a few milliseconds apart: without `is_repeat`, `serve --workers N` took the
copy for a second Ctrl-C and killed its workers mid-request (exit 1), and a command aborted
at a prompt was killed by the copy while it exited (exit 130 in place of 1).
And when the launcher is killed outright (`kill -9` of the pid the operator started), the
program lived on orphaned, still serving: `follow_the_launcher` stops it then, as a worker
stops with its supervisor, and removes the unpacked folder the launcher would have removed.
The program also keeps its unpacked folder from /tmp's cleaner (`hold_the_unpacked_folder`).
And `serve` notes a stop that comes before it serves, to stop once it can
(`hold_stops_until_serving`). Its Python modules keep coming from the file it started as,
not from whatever file lies at its path later (`read_modules_from_this_binary`).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import sys
import time
from contextlib import suppress
from types import FrameType

# A forwarded copy comes within milliseconds; a person's second press later.
REPEAT_WINDOW_SEC = 0.25
_last_seen: dict[int, float] = {}


def is_repeat(signum: int) -> bool:
    """True when the same signal came less than REPEAT_WINDOW_SEC after the last one that
    counted: the same stop delivered twice (see the module's docstring)."""
    now = time.monotonic()
    last = _last_seen.get(signum)
    if last is not None and now - last < REPEAT_WINDOW_SEC:
        return True
    _last_seen[signum] = now
    return False


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Python's own Ctrl-C (KeyboardInterrupt), once per press."""
    if not is_repeat(signum):
        raise KeyboardInterrupt


def _ignore_late_interrupts() -> None:
    """At exit, after the last atexit hook: Python puts the default SIGINT action back while
    it shuts down, and a forwarded copy of a Ctrl-C landing then killed the process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def heed_interrupts_once() -> None:
    """A command's Ctrl-C raises KeyboardInterrupt once, not again for the launcher's copy."""
    signal.signal(signal.SIGINT, _interrupt)
    atexit.register(_ignore_late_interrupts)  # registered first: runs last


_stops_before_serving: list[int] = []  # the stop `serve` got before its server handles stops


def hold_stops_until_serving() -> None:
    """`serve`, from its first step until its server handles stops (the supervisor of several
    workers, or the one process's own handlers): SIGTERM and a hangup (unless ignored: nohup)
    are noted, not fatal (they killed it with no line in its log, exit 143, while it imported
    the server or migrated its database); it stops once it can (`stop_before_serving`)."""
    for stop in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(stop) != signal.SIG_IGN:
            signal.signal(stop, _note_stop)


def _note_stop(signum: int, frame: FrameType | None) -> None:
    if not is_repeat(signum) and not _stops_before_serving:
        _stops_before_serving.append(signum)


def stop_before_serving() -> int | None:
    """The stop signal `serve` got before serving (hold_stops_until_serving), if any."""
    return _stops_before_serving[0] if _stops_before_serving else None


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def follow_the_launcher() -> None:
    """In the binary, on Linux: SIGTERM (a graceful stop) to this process when its launcher
    dies, and at exit the unpacked folder removed if the launcher is gone. The worker
    processes of `serve` tie themselves to this one the same way."""
    if not getattr(sys, "frozen", False) or not sys.platform.startswith("linux"):
        return
    import ctypes

    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    atexit.register(_remove_unpacked_if_orphaned, os.getppid())


_held: list[int] = []  # the unpacked folder's descriptor, open (and locked) for good


def hold_the_unpacked_folder() -> None:
    """In the binary: a shared BSD lock on the unpacked folder for as long as this process
    runs. systemd-tmpfiles ages out what lies unread in /tmp for 10 days (Debian 13, Fedora,
    upstream; a service's PrivateTmp too), which took a long-running `serve`'s shared
    libraries from under it (a replaced worker could not start, data files read late were
    gone); it skips a folder someone holds such a lock on (tmpfiles.d(5), "Age")."""
    unpacked = getattr(sys, "_MEIPASS", None)
    if not getattr(sys, "frozen", False) or not unpacked:
        return
    import fcntl

    with suppress(OSError):
        descriptor = os.open(unpacked, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        _held.append(descriptor)


def read_modules_from_this_binary() -> None:
    """In the binary, on Linux: the modules imported late (the stripe library on the first
    top-up, ...) read from the executable this process runs, held open. PyInstaller reopens
    the binary's path for each import, and the README's upgrade installs the next release
    there while the old `serve` runs: until its restart those imports read the new file at
    the old offsets (zlib.error: every top-up a 500)."""
    archive = getattr(sys.modules.get("pyimod02_importers"), "pyz_archive", None)
    path = getattr(archive, "_filename", None)
    if not getattr(sys, "frozen", False) or not sys.platform.startswith("linux"):
        return
    if not isinstance(path, str) or os.path.realpath(path) != os.path.realpath(sys.executable):
        return
    with suppress(OSError):  # /proc/self/exe: this process's own file, even once replaced
        descriptor = os.open("/proc/self/exe", os.O_RDONLY | os.O_CLOEXEC)
        _held.append(descriptor)
        archive._filename = f"/proc/self/fd/{descriptor}"  # type: ignore[union-attr]


def _remove_unpacked_if_orphaned(launcher: int) -> None:
    unpacked = getattr(sys, "_MEIPASS", None)  # PyInstaller's unpacked folder
    if unpacked and os.getppid() != launcher:
        shutil.rmtree(unpacked, ignore_errors=True)
