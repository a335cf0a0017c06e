"""The Prometheus multiprocess folders of `serve --workers N` (/tmp/codelace-metrics-*): who
owns one, and removing those whose owner is gone.

`serve` removes its folder when it stops (metrics.cleanup), but a supervisor killed with
SIGKILL (the OOM killer, `kill -9`) cannot: its folder stayed for ever. Each folder records
its owner in OWNER_FILE (the supervisor's pid and, where /proc tells it, the process's start
time, so a reused pid is not taken for it); every `serve` start removes the folders of this
user whose owner is gone and in which no process still writes (prometheus_client names each
writer's file after its pid). A folder with no owner recorded (another program's, one made
by a release before this, one a starting box made a moment ago) is left alone, and so is one
whose owner ran in another pid namespace (a container sharing /tmp, a box run as pid 1 in a
namespace of its own): its pids mean other processes here, or none, whatever its box does.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "codelace-metrics-"
OWNER_FILE = "owner"


def _proc_stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command's name ([] where /proc has none)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return []


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' where /proc has none)."""
    stat = _proc_stat(pid)
    return stat[19] if len(stat) > 19 else ""


def _alive(pid: int, started: str = "") -> bool:
    """Whether the process runs (and, `started` given and known, is the one recorded); a
    zombie (dead, not yet reaped: a container's init may never reap it) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    stat = _proc_stat(pid)
    if stat and stat[0] in ("Z", "X"):
        return False
    return not started or _start_time(pid) in ("", started)


def pid_namespace() -> str:
    """This process's pid namespace ('pid:[4026531836]'; '' where /proc does not tell)."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def record_owner(folder: str) -> None:
    """Name this process as the folder's owner, with its pid namespace (written whole: a reader
    never sees half)."""
    pid = os.getpid()
    part = Path(folder) / f".{OWNER_FILE}.tmp"
    part.write_text(f"{pid} {_start_time(pid)}".strip() + f"\n{pid_namespace()}\n")
    part.replace(Path(folder) / OWNER_FILE)


def _abandoned(folder: Path) -> bool:
    """Whether the folder is ours and its owner and every writer in it are gone."""
    try:
        if folder.is_symlink() or folder.stat().st_uid != os.getuid():
            return False
        owner, *namespace = (folder / OWNER_FILE).read_text().splitlines()
        if (namespace[0] if namespace else "") != pid_namespace():
            return False  # its pids are not ours to look up
        pid, *started = owner.split()
        if _alive(int(pid), started[0] if started else ""):
            return False
        names = os.listdir(folder)
    except (OSError, ValueError):  # no owner recorded, not readable, removed meanwhile
        return False
    writers = (name.rsplit("_", 1)[-1].removesuffix(".db") for name in names)
    return not any(_alive(int(w)) for w in writers if w.isdigit())


def remove_abandoned(tempdir: str | None = None) -> list[str]:
    """Remove the metrics folders left by serve processes that are gone; their paths."""
    root = Path(tempdir or tempfile.gettempdir())
    removed: list[str] = []
    for folder in sorted(root.glob(PREFIX + "*")):
        if _abandoned(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(str(folder))
    return removed
