"""A stop signal (SIGTERM, or a hangup) that reaches `serve` before it serves: while it imports
the server, migrates and checks its database, or while Sanic sets its one process (or the
supervisor of several) up. It stops the box gracefully and `serve` exits 0, as at any later
moment (README, Stopping), neither killed by the signal with no line in its log nor serving on.

The signal is a real one the process sends itself at a chosen import (a `sitecustomize` on
PYTHONPATH watches the imports of the `serve` process, not of its workers), so the test lands
it at the same place every run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.foundation.conftest import make_workspace
from tests.support import REPO_ROOT, cli_env, free_port, kill_tree

pytestmark = pytest.mark.timeout(90)

SIGNAL_AT_IMPORT = """
import importlib.abc, os, signal, sys

SERVE = "serve" in sys.argv  # as started: a spawned worker gets serve's argv later

class _SignalAt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == os.environ["SIGNAL_AT_IMPORT"] and SERVE:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), getattr(signal, os.environ["SIGNAL_NAME"]))
        return None

sys.meta_path.insert(0, _SignalAt())
"""

# (signal, workers, the import it lands at)
MOMENTS = [
    ("SIGTERM", 1, "codelace_box.server"),  # serve importing the server
    ("SIGTERM", 2, "codelace_box.server"),
    ("SIGTERM", 1, "codelace_box.billing.currencies"),  # the start's database work
    ("SIGHUP", 2, "codelace_box.billing.currencies"),
    ("SIGTERM", 1, "sanic_ext"),  # Sanic setting its one process up, before its handlers
    # the supervisor of several starting Sanic's manager process (a hangup was ignored then,
    # so that process would not die of it, and lost: the box served on)
    ("SIGHUP", 2, "multiprocessing.popen_spawn_posix"),
]


@pytest.mark.parametrize(("signal_name", "workers", "module"), MOMENTS)
def test_a_stop_before_serving_stops_the_box_and_exits_zero(
    tmp_path: Path, signal_name: str, workers: int, module: str
) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SIGNAL_AT_IMPORT)
    space = make_workspace(tmp_path / "box", server={"port": free_port()})
    env = {"PYTHONPATH": f"{hooks}:{REPO_ROOT}", "SIGNAL_AT_IMPORT": module}
    env["SIGNAL_NAME"] = signal_name
    log = tmp_path / "serve.log"
    command = [sys.executable, "-m", "codelace_box", "--config", str(space.config), "serve"]
    with log.open("wb") as output:
        serve = subprocess.Popen(
            [*command, "--workers", str(workers)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=cli_env(env),
            cwd=space.root,
            start_new_session=True,  # a hangup of its own, not of the test's terminal
        )
    try:
        code: int | None = serve.wait(60)
    except subprocess.TimeoutExpired:
        code = None  # it lost the stop: serving on
    finally:
        kill_tree(serve)  # its workers too, if it still runs
    text = log.read_text(errors="replace")
    assert code == 0, (code, text)
    assert f"Received signal {signal_name}" in text, text
    assert "Traceback" not in text, text
