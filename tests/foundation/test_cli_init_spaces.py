"""`init` into a folder whose name has a space (`/srv/my box`): the command it says to run
next is one a shell runs as printed."""

from __future__ import annotations

import shlex
from pathlib import Path

from tests.support import run_cli


def test_the_next_command_init_prints_keeps_a_path_with_spaces_whole(tmp_path: Path) -> None:
    """It printed `codelace-box --config /srv/my box/code lace.toml serve`: pasted into a
    shell, that is `--config /srv/my` and three stray words (click: 'Got unexpected extra
    arguments')."""
    target = tmp_path / "my box" / "code lace.toml"
    target.parent.mkdir()
    result = run_cli(None, "--config", str(target), "init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    said = result.stdout.splitlines()[-1]
    lead = "next: edit it if you like, then run: "
    assert said.startswith(lead), said
    assert shlex.split(said.removeprefix(lead)) == [
        "codelace-box",
        "--config",
        str(target),
        "serve",
    ]
