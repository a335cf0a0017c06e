"""Ctrl-C while the program is still importing its own modules (the first ~0.3 s of any
command, `serve` included) ends it with the one-line "error: aborted" and exit 1, as Ctrl-C
later does, not with a Python traceback of whichever import it landed in.

The interrupt is a real SIGINT the process sends itself at a chosen import (a `sitecustomize`
on PYTHONPATH watches the imports), so the test lands it at the same place every run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import cli_env

SIGNAL_AT_IMPORT = """
import importlib.abc, os, signal, sys

class _InterruptAt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == os.environ["INTERRUPT_AT_IMPORT"]:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, _InterruptAt())
"""


@pytest.mark.parametrize(
    "module",
    ["multiprocessing", "codelace_box.cli.main", "cryptography.fernet", "click"],
)
def test_ctrl_c_while_importing_is_one_line_not_a_traceback(tmp_path: Path, module: str) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SIGNAL_AT_IMPORT)
    env = cli_env({"PYTHONPATH": str(hooks), "INTERRUPT_AT_IMPORT": module})
    done = subprocess.run(
        [sys.executable, "-m", "codelace_box", "serve", "--port", "1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == ["error: aborted"]
    assert done.returncode == 1
    assert not (tmp_path / "data").exists()  # it stopped before doing anything
