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


def test_init_force_never_replaces_what_is_not_a_file(tmp_path: Path) -> None:
    """`--config /dev/null` is a common way to say "no config file"; `init --force` on it, run
    as root, replaced the system's /dev/null with a regular file. A socket stands in for the
    device here (any user can make one): refused in one line, left as it was."""
    import socket

    target = tmp_path / "codelace.toml"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(target))
        link = tmp_path / "link.toml"
        link.symlink_to(target)
        for named in (target, link):
            result = run_cli(named, "init", "--force", cwd=tmp_path)
            assert result.returncode == 1, (result.stdout, result.stderr)
            assert result.stderr == (
                f"error: {named}: not a regular file (a device, a socket, a folder): "
                "init writes only a file; name another path\n"
            )
            assert stat.S_ISSOCK(target.stat().st_mode), "the socket is still there"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["codelace.toml", "link.toml"]


def test_init_over_a_link_that_names_itself_writes_the_file(tmp_path: Path) -> None:
    """A codelace.toml link that names itself (a loop: what `ln -s codelace.toml codelace.toml`
    makes) is no file to keep a secret from: init wrote the file as over any missing one, then
    said 'unexpected RuntimeError: Symlink loop' once it looked for the secret of the folder
    the file will be in."""
    link = tmp_path / "codelace.toml"
    link.symlink_to("codelace.toml")
    result = run_cli(None, "init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[gateway]" in link.read_text() and load_config(str(link), {}).server.secret_key
