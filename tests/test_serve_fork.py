"""The tests' `serve` fork server (tests/serve_fork.py): a single-worker box starts as a child of
it and behaves as a fresh process would (its own random request ids, SIGTERM's graceful stop and
exit 0, SIGKILL's -9, the caller's umask); what it cannot copy starts from scratch."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests import serve_fork
from tests.cli_fork import fork_enabled
from tests.support import PROGRAM, TLS, ServerProcess, base_sections, cli_env, write_config

pytestmark = pytest.mark.skipif(
    not fork_enabled() or serve_fork.fork_off(), reason="CODELACE_TEST_FORK(_SERVE)=0"
)


def _box(tmp_path: Path, name: str, **server: object) -> ServerProcess:
    folder = tmp_path / name
    folder.mkdir()
    sections = base_sections(folder)
    sections["server"].update(server)
    config = write_config(folder / "codelace.toml", sections)
    return ServerProcess(config, int(sections["server"]["port"]))


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _umask(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(
        next(line for line in status.splitlines() if line.startswith("Umask:")).split()[1], 8
    )


def test_two_forked_boxes_answer_with_their_own_request_ids(tmp_path: Path) -> None:
    boxes = [_box(tmp_path, "one").start(), _box(tmp_path, "two").start()]
    try:
        ids = set()
        for box in boxes:
            assert isinstance(box.process, serve_fork.ForkedProcess)
            assert _parent(box.process.pid) != os.getpid()  # the fork server's child
            assert _umask(box.process.pid) == _umask(os.getpid())
            for _ in range(3):
                answer = httpx.get(box.base_url + "/healthz", verify=TLS)
                ids.add(answer.headers["x-request-id"])
        assert len(ids) == 6, ids
    finally:
        codes = [box.stop() for box in boxes]
    assert codes == [0, 0]
    assert "serving on" in boxes[0].log_text()


def test_the_handle_waits_polls_and_signals_as_popen_does(tmp_path: Path) -> None:
    box = _box(tmp_path, "box").start()
    process = box.process
    assert isinstance(process, serve_fork.ForkedProcess)
    with pytest.raises(subprocess.TimeoutExpired):
        process.wait(0.2)
    assert process.poll() is None and process.returncode is None
    process.kill()
    assert process.wait(10) == -signal.SIGKILL == process.returncode == process.poll()
    process.kill()  # after its end: nothing happens, as Popen's
    assert box.stop() == -signal.SIGKILL


@pytest.mark.parametrize(
    ("words", "env", "server"),
    [
        (["serve", "--workers", "2"], {}, {}),
        (["serve", "--workers=3"], {}, {}),
        (["serve"], {"CODELACE_SERVER_WORKERS": "2"}, {}),
        (["serve"], {"CODELACE_CONFIG": "other.toml"}, {}),
        (["serve"], {}, {"workers": 2}),
        (["serve"], {"PYTHONHASHSEED": "1"}, {}),
        (["serve"], {"HOME": "/nonexistent-home"}, {}),
        (["serve"], {"SSL_CERT_FILE": "/nonexistent.pem"}, {}),  # aiohttp read it at import
    ],
)
def test_several_workers_or_another_start_stay_fresh(
    tmp_path: Path, words: list[str], env: dict[str, str], server: dict[str, object]
) -> None:
    box = _box(tmp_path, "box", **server)
    args = ["--config", str(box.config), *words]
    assert serve_fork.forkable(PROGRAM, args, cli_env(env), box.config) is None
    assert serve_fork.forkable(("nohup", *PROGRAM), args[:3], cli_env(), box.config) is None


def test_one_worker_with_the_box_settings_is_forked(tmp_path: Path) -> None:
    box = _box(tmp_path, "box", workers=1)
    args = ["--config", str(box.config), "serve", "--workers", "1"]
    env = cli_env(
        {"CODELACE_SERVER_PORT": "1", "TMPDIR": str(tmp_path), "PYTEST_CURRENT_TEST": "another"}
    )
    assert serve_fork.forkable(PROGRAM, args, env, box.config) is not None
