"""Two `serve` processes on one database are two hold owners, even with one hostname and one pid.

In containers every box may be pid 1 and hostnames repeat (`--network host`), so an owner of
'<host>:<pid>' could name two boxes at once: each would take the other's holds for its own
(free them as leaked, or miss that the other died). Here each box runs as pid 1 of a pid
namespace of its own (`unshare`, where this machine lets a user make namespaces; else as a plain
process), both with this machine's hostname, each with a call in flight: their holds' owners
must differ.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, MODEL_PRICES, PROVIDER_ADD, Box
from tests.support import PROGRAM, TLS, ServerProcess, base_sections, free_port, write_config

pytestmark = pytest.mark.timeout(120)
PID_1 = ("unshare", "--user", "--map-root-user", "--pid", "--fork", "--kill-child=SIGTERM")


def _namespaces_work() -> bool:
    """Whether this machine lets this user run a process as pid 1 of a new pid namespace."""
    if shutil.which("unshare") is None:
        return False
    done = subprocess.run(
        [*PID_1, "sh", "-c", "echo $$"], capture_output=True, text=True, timeout=30, check=False
    )
    return done.returncode == 0 and done.stdout.strip() == "1"


class Pid1ServerProcess(ServerProcess):
    """`serve` as pid 1 of a pid namespace of its own, the child of `unshare` (which does not
    pass a SIGTERM on: the box gets it; `unshare` ends with it)."""

    program = (*PID_1, *PROGRAM)

    def stop(self, timeout: float = 20) -> int:
        if self.process is not None and self.process.poll() is None:
            pid = self.process.pid
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            for child in children:
                os.kill(int(child), signal.SIGTERM)
        return super().stop(timeout)


@pytest.fixture
def two_boxes(tmp_path: Path, fake: FakeOpenAI) -> Iterator[tuple[list[Box], bool]]:
    """Two boxes on one database (each its own port), as pid 1 each when namespaces work;
    (the boxes, whether they are pid 1)."""
    as_pid_1 = _namespaces_work()
    sections = base_sections(tmp_path)
    boxes: list[Box] = []
    with ExitStack() as stack:
        for number in range(2):
            port = free_port()
            sections["server"]["port"] = port
            config = write_config(tmp_path / f"box{number}.toml", sections)
            box = Box(None, config, Path(), fake)  # type: ignore[arg-type]
            if number == 0:
                box.cli(*PROVIDER_ADD, fake.base_url, "--key", "sk-fake-key-0001")
                box.cli("models", "set", MODEL, *MODEL_PRICES)
            kind = Pid1ServerProcess if as_pid_1 else ServerProcess
            box.server = kind(config, port)
            box.server.start()
            stack.callback(box.server.stop)
            boxes.append(box)
        yield boxes, as_pid_1


def test_two_boxes_with_one_hostname_and_one_pid_are_two_owners(
    two_boxes: tuple[list[Box], bool], fake: FakeOpenAI
) -> None:
    boxes, as_pid_1 = two_boxes
    _, key = boxes[0].new_user("10")
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    for _ in boxes:
        fake.push(Reply(pieces=["a", "b", "c", "d"], piece_delay=0.5))
    with ExitStack() as streams:
        for box in boxes:
            answer = streams.enter_context(
                httpx.stream("POST", f"{box.url}/v1/chat/completions", json=body,
                             headers={"authorization": f"Bearer {key}"}, timeout=30, verify=TLS)
            )  # fmt: skip
            assert answer.status_code == 200, answer.read()
            next(answer.iter_lines())  # the call is in flight: its hold is taken
        owners = sorted(row[0] for row in boxes[0].query("SELECT owner FROM hold"))
    assert len(owners) == 2, owners
    parts = [owner.split(":") for owner in owners]
    assert all(len(p) == 3 and p[0] == socket.gethostname() for p in parts), owners
    if as_pid_1:  # the case of containers: one hostname, both pid 1
        assert parts[0][1] == parts[1][1] == "1", owners
    assert owners[0] != owners[1] and parts[0][2] != parts[1][2], owners
    for box in boxes:
        assert "Traceback" not in box.server.log_text()
