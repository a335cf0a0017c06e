"""`init --force` over a config file that is a symbolic link (./codelace.toml linked to
/etc/codelace/codelace.toml, a dotfiles repository) replaced the link with a regular file:
the file the link names kept its old text and the link was gone. It writes through the link
now, as editors do."""

from __future__ import annotations

import stat
from pathlib import Path

from codelace_box.config import load_config
from tests.support import run_cli


def test_init_force_writes_through_a_symlinked_config(tmp_path: Path) -> None:
    real = tmp_path / "etc" / "codelace.toml"
    real.parent.mkdir()
    real.write_text('[server]\nsecret_key = "file-secret-0123456789"\n')
    link = tmp_path / "codelace.toml"
    link.symlink_to(Path("etc") / "codelace.toml")
    result = run_cli(link, "init", "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink(), "the link stays a link"
    assert "[gateway]" in real.read_text(), "the file it names holds init's text"
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert load_config(str(real), {}).server.secret_key == "file-secret-0123456789"
    assert [p.name for p in real.parent.iterdir()] == ["codelace.toml"], "no file left over"


def test_init_over_a_dangling_symlink_creates_the_file_it_names(tmp_path: Path) -> None:
    real = tmp_path / "etc" / "codelace.toml"
    real.parent.mkdir()
    link = tmp_path / "codelace.toml"
    link.symlink_to(real)
    result = run_cli(None, "init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and "[gateway]" in real.read_text()
