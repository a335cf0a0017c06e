"""The box's files are private whatever the umask: under umask 022, a data folder the box
creates is 700 and the database, its -wal and -shm, the generated server secret and backups
are 600; a folder the operator made keeps its own mode."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support import PROGRAM, ServerProcess, base_sections, cli_env, free_port, write_config

pytestmark = pytest.mark.timeout(120)
# Run codelace-box as a shell with umask 022 (the usual default) would: the test process's
# own umask is left alone.
UMASK_022: tuple[str, ...] = ("sh", "-c", 'umask 022 && exec "$@"', "sh", *PROGRAM)


class UmaskServer(ServerProcess):
    program = UMASK_022


def run_022(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*UMASK_022, "--config", str(config), *args],
        capture_output=True, text=True, env=cli_env(), cwd=config.parent, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_serve_and_backup_under_umask_022_keep_everything_private(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path / "codelace.toml", base_sections(tmp_path, port))
    data = tmp_path / "data"
    assert not data.exists()
    server = UmaskServer(config, port).start()
    try:
        # serve is running: the database is open in WAL mode, so its -wal and -shm exist
        files = {name: data / name for name in ("codelace.db", "codelace.db-wal", "codelace.db-shm",
                                                "secret_key")}  # fmt: skip
        assert {name: path.exists() for name, path in files.items()} == dict.fromkeys(files, True)
        assert mode(data) == 0o700
        assert {name: oct(mode(path)) for name, path in files.items()} == dict.fromkeys(
            files, "0o600"
        )
        run_022(config, "backup", "backups/first.db")  # a new folder for backups
        run_022(config, "backup", str(data / "second.db"))
    finally:
        server.stop()
    assert mode(tmp_path / "backups") == 0o700
    assert oct(mode(tmp_path / "backups" / "first.db")) == "0o600"
    assert oct(mode(data / "second.db")) == "0o600"
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == ["first.db"]


def test_migrate_in_a_folder_the_operator_made_keeps_its_mode(tmp_path: Path) -> None:
    """The box does not take over a folder it did not create (it may be a shared working
    directory); the files it creates there are private all the same."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    sections = base_sections(tmp_path)
    sections["database"]["path"] = str(shared / "box.db")
    config = write_config(tmp_path / "codelace.toml", sections)
    run_022(config, "migrate")
    assert mode(shared) == 0o755
    assert oct(mode(shared / "box.db")) == "0o600"
    # a fresh data folder two levels down: the data folder itself is 700
    sections["database"]["path"] = str(tmp_path / "deep" / "data" / "box.db")
    run_022(write_config(tmp_path / "codelace.toml", sections), "migrate")
    assert mode(tmp_path / "deep" / "data") == 0o700
    assert oct(mode(tmp_path / "deep" / "data" / "box.db")) == "0o600"


def test_files_an_earlier_version_left_readable_are_made_private(tmp_path: Path) -> None:
    """An install made before the box kept its files private (its database and server secret
    644): the next start takes the group's and others' access away, so an upgrade is enough."""
    port = free_port()
    config = write_config(tmp_path / "codelace.toml", base_sections(tmp_path, port))
    data = tmp_path / "data"
    server = UmaskServer(config, port).start()
    server.stop()
    for name in ("codelace.db", "secret_key"):
        (data / name).chmod(0o644)
    run_022(config, "migrate")
    assert oct(mode(data / "codelace.db")) == "0o600"
    server = UmaskServer(config, port).start()
    try:
        assert {name: oct(mode(data / name)) for name in ("codelace.db", "secret_key",
                "codelace.db-wal")} == dict.fromkeys(("codelace.db", "secret_key",
                "codelace.db-wal"), "0o600")  # fmt: skip
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("stripe", "secret_key", "sk_test_a_stripe_key"),
        ("email", "smtp_password", "the mail password"),
        ("server", "secret_key", "the-server-secret-0123456789"),
        ("alerts", "webhook_url", "https://hooks.example.test/services/T0/B0/token"),
    ],
)
def test_serve_warns_when_others_may_read_secrets_in_its_config_file(
    tmp_path: Path, section: str, key: str, value: str
) -> None:
    """`init` writes codelace.toml 600, but an operator who copies the example or writes the
    file by hand gets the umask's 644: the Stripe key, the SMTP password or the server secret
    (which decrypts every provider key in a copied database) readable by every local user, and
    nothing said so. serve now names the file and the keys (never their values)."""
    port = free_port()
    sections = base_sections(tmp_path, port)
    sections.setdefault(section, {})[key] = value
    config = write_config(tmp_path / "codelace.toml", sections)
    config.chmod(0o644)
    server = UmaskServer(config, port).start()
    server.stop()
    warned = [line for line in server.log_text().splitlines() if "chmod 600" in line]
    assert len(warned) == 1, server.log_text()
    assert str(config) in warned[0] and f"{section}.{key}" in warned[0]
    assert value not in server.log_text()
    config.chmod(0o600)
    server = UmaskServer(config, port).start()
    server.stop()
    assert server.log_text().count("chmod 600") == 1  # the first start's line only


def test_a_readable_config_file_without_secrets_is_no_warning(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path / "codelace.toml", base_sections(tmp_path, port))
    config.chmod(0o644)
    server = UmaskServer(config, port).start()
    server.stop()
    assert "chmod 600" not in server.log_text()


@pytest.mark.parametrize("setting", ["database", "secret"])
def test_a_path_that_is_no_regular_file_keeps_its_mode(tmp_path: Path, setting: str) -> None:
    """`database.path = "/dev/null"` (or a server secret file linked to it), run as root, made
    /dev/null 600: the box took its group's and others' access away as from a database an
    earlier version left readable, and every other program on the machine lost /dev/null. A
    pipe stands in for the device here; the command fails in one line, the pipe keeps its mode
    and nothing waits on it."""
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    pipe.chmod(0o666)
    config = write_config(tmp_path / "codelace.toml", base_sections(tmp_path, free_port()))
    if setting == "database":
        env = {**cli_env(), "CODELACE_DATABASE_PATH": str(pipe)}
    else:
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "secret_key").symlink_to(pipe)
        env = cli_env()
    result = subprocess.run(
        [*PROGRAM, "--config", str(config), "providers", "add", "p", "--kind", "openai",
         "--key", "sk-test-0001"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert len(result.stderr.splitlines()) == 1 and "not a regular file" in result.stderr
    assert oct(mode(pipe)) == "0o666"
