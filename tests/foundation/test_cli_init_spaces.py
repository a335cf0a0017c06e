"""A config in a folder whose name has a space (`/srv/my box`): the commands the box says to
run (`init`'s next step, serve's chmod of a readable config) are ones a shell runs as
printed."""

from __future__ import annotations

import shlex
from pathlib import Path

from codelace_box.config import load_config
from codelace_box.config.secret import readable_secrets_notice
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


def test_the_chmod_serve_asks_for_keeps_a_path_with_spaces_whole(tmp_path: Path) -> None:
    """serve's line about a config others may read ended `chmod 600 /srv/my box/code lace.toml`:
    pasted, chmod failed on `/srv/my` and two names that are no files."""
    target = tmp_path / "my box" / "code lace.toml"
    target.parent.mkdir()
    target.write_text('[server]\nsecret_key = "a-secret-of-this-box-000000000000000000"\n')
    target.chmod(0o644)
    said = readable_secrets_notice(load_config(str(target), {}))
    assert said is not None and said.startswith(f"{target} holds server.secret_key "), said
    assert shlex.split(said.rpartition(": ")[2]) == ["chmod", "600", str(target)]
