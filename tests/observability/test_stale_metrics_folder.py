"""A `serve --workers 2` supervisor killed with SIGKILL never removes its Prometheus
multiprocess folder (/tmp/codelace-metrics-*): the next start removes such folders whose owner
is gone, and never one of a box still running."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from codelace_box import metrics_folders
from tests.support import ServerProcess, base_sections, descendants, free_port, write_config

pytestmark = pytest.mark.timeout(120)


def _folders(tmp: Path) -> set[str]:
    return {p.name for p in tmp.glob("codelace-metrics-*")}


def _box(tmp_path: Path, name: str, temp: Path) -> ServerProcess:
    port = free_port()
    sections = base_sections(tmp_path / name, port)
    sections["server"]["workers"] = 2
    config = write_config(tmp_path / name / "codelace.toml", sections)
    return ServerProcess(config, port, env={"TMPDIR": str(temp)})


def _kill_all(box: ServerProcess, folder: Path) -> None:
    """SIGKILL the supervisor, then the workers it left behind (those its log names and those
    writing in its metrics folder, whose files bear their pids)."""
    assert box.process is not None
    below = set(descendants(box.process.pid))  # Sanic's manager process among them
    box.process.send_signal(signal.SIGKILL)
    box.process.wait(10)
    pids = below | {int(pid) for pid in re.findall(r"Starting worker \[(\d+)\]", box.log_text())}
    writers = (f.stem.rsplit("_", 1)[1] for f in folder.glob("*.db"))
    pids |= {int(pid) for pid in writers if pid.isdigit()}  # not counter_folded.db
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    for pid in pids:  # gone, or a zombie no one reaps (what the box must take for gone)
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_the_next_start_removes_a_killed_supervisors_metrics_folder(tmp_path: Path) -> None:
    # the boxes' TMPDIR, short: Sanic's manager makes a Unix socket under it, and a path past
    # 107 bytes (pytest's tmp_path of a long test name) stopped serve from starting
    temp = Path(tempfile.mkdtemp(prefix="cm-", dir="/tmp"))
    try:
        _start_kill_and_start_again(tmp_path, temp)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def _start_kill_and_start_again(tmp_path: Path, temp: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    foreign = temp / "codelace-metrics-notours"  # no owner recorded: not known to be ours
    foreign.mkdir()
    killed = _box(tmp_path, "a", temp).start()
    try:
        [stale] = _folders(temp) - {foreign.name}
    finally:
        _kill_all(killed, temp / stale)
    assert stale in _folders(temp), "SIGKILL leaves the folder behind"
    alive = _box(tmp_path, "b", temp).start()
    try:
        left = _folders(temp)
        assert stale not in left, "the next start removed the dead supervisor's folder"
        assert foreign.name in left, "a folder without a recorded owner stays"
        [own] = left - {foreign.name}
        third = _box(tmp_path, "a", temp).start()  # a box starting beside a live one
        try:
            assert own in _folders(temp), "a live box's folder stays"
        finally:
            third.stop()
    finally:
        alive.stop()
    assert _folders(temp) == {foreign.name}, "a stopped box removes its own folder"


def _dead_pid() -> int:
    """The pid of a process that ran and is gone (reaped)."""
    child = subprocess.Popen(["true"])
    child.wait(10)
    return child.pid


def test_only_folders_whose_owner_and_writers_are_gone_are_removed(tmp_path: Path) -> None:
    dead, live = _dead_pid(), os.getpid()
    here, elsewhere = metrics_folders.pid_namespace(), "pid:[1]"  # a container sharing /tmp
    cases = {
        "dead": (dead, [], here),
        "owner-alive": (live, [], here),
        "writer-alive": (dead, [live], here),
        "other-namespace": (dead, [], elsewhere),
    }
    for name, (owner, writers, namespace) in cases.items():
        folder = tmp_path / f"{metrics_folders.PREFIX}{name}"
        folder.mkdir()
        (folder / metrics_folders.OWNER_FILE).write_text(f"{owner}\n{namespace}\n")
        for pid in writers:
            (folder / f"counter_{pid}.db").write_bytes(b"")
    (tmp_path / f"{metrics_folders.PREFIX}a-file").write_text("not a folder")
    (tmp_path / f"{metrics_folders.PREFIX}no-owner").mkdir()
    removed = metrics_folders.remove_abandoned(str(tmp_path))
    assert removed == [str(tmp_path / f"{metrics_folders.PREFIX}dead")]
    assert _folders(tmp_path) == {
        f"{metrics_folders.PREFIX}{n}"
        for n in ("owner-alive", "writer-alive", "other-namespace", "a-file", "no-owner")
    }
