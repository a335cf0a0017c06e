"""`providers add` on a new box (no server.secret_key, no secret file yet) generated the server
secret into the data folder silently: the file that every stored provider key needs, which an
operator moving the database must move too, was never named. The command says once on stderr
where it wrote the new secret (never the secret itself), as serve does at its start."""

from __future__ import annotations

from pathlib import Path

from tests.acceptance.cli_tools import error_line
from tests.support import run_cli, write_config

ADD = ("providers", "add", "openai", "--kind", "openai", "--key", "sk-secret-note-0001")
NOTE = (
    "note: generated a new server secret in {path} (keep a copy with the database: it "
    "encrypts the provider keys; or set server.secret_key)"
)


def test_providers_add_on_a_new_box_says_where_it_wrote_the_secret_once(tmp_path: Path) -> None:
    assert run_cli(None, "migrate", cwd=tmp_path).returncode == 0
    first = run_cli(None, *ADD, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    path = tmp_path / "data" / "secret_key"
    assert first.stderr.strip().splitlines() == [NOTE.format(path=path)], first.stderr
    secret = path.read_text().strip()
    assert secret and secret not in first.stderr + first.stdout
    again = run_cli(None, "providers", "key-add", "openai", "--key", "sk-note-02", cwd=tmp_path)
    assert again.returncode == 0 and again.stderr == "", again.stderr


def test_a_new_database_and_a_new_secret_are_both_said(tmp_path: Path) -> None:
    first = run_cli(None, *ADD, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    lines = first.stderr.strip().splitlines()
    assert len(lines) == 2 and "created a new, empty one" in lines[0], lines
    assert lines[1] == NOTE.format(path=tmp_path / "data" / "secret_key")


def test_a_failed_command_that_made_the_secret_says_so_in_its_one_line(tmp_path: Path) -> None:
    assert run_cli(None, "migrate", cwd=tmp_path).returncode == 0
    bad = run_cli(None, "providers", "key-add", "nosuch", "--key", "k", cwd=tmp_path)
    line = error_line(bad)
    assert (tmp_path / "data" / "secret_key").is_file()
    assert f"generated a new server secret in {tmp_path / 'data' / 'secret_key'}" in line, line


def test_a_configured_secret_is_not_a_new_one(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "codelace.toml",
        {"server": {"secret_key": "a-configured-secret-of-enough-length-0000"}},
    )
    assert run_cli(config, "migrate").returncode == 0
    added = run_cli(config, *ADD)
    assert added.returncode == 0 and added.stderr == "", added.stderr
    assert not (tmp_path / "data" / "secret_key").exists()
