"""Acceptance of the README's "Command line": every command and option as written, from outside.

Each command runs as a subprocess on a real data dir. Success is exit 0; failure is a non-zero
exit with exactly one line on stderr; `--json` on list/show prints JSON.
"""

from __future__ import annotations

import importlib.metadata
import re
import socket
import stat
import subprocess
from pathlib import Path

import apsw
import httpx
import pytest

from tests.acceptance.cli_tools import Box, error_line
from tests.support import PROGRAM, ServerProcess, cli_env, free_port, is_uuid4, run_cli

pytestmark = pytest.mark.timeout(120)

FULL_KEY = re.compile(r"^cl_[A-Za-z0-9]{32,}$")


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> Box:
    """One box for the module; every test uses its own emails and names."""
    built = Box.create(tmp_path_factory.mktemp("cli"))
    built.ok("migrate")
    return built


def test_version_prints_the_package_version() -> None:
    result = run_cli(None, "version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"codelace-box {importlib.metadata.version('codelace-box')}"


def test_admin_without_a_terminal_is_one_line_not_a_hang(tmp_path: Path) -> None:
    """`ssh host codelace-box admin` (no -t), cron or a pipe: no terminal to draw on."""
    result = subprocess.run(
        [*PROGRAM, "admin"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=cli_env(None),
        cwd=tmp_path,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert "admin needs an interactive terminal" in error_line(result)
    assert not (tmp_path / "data").exists()  # nothing created for a command that cannot run


def test_the_usual_version_and_short_help_flags_work_too() -> None:
    version = run_cli(None, "--version")
    assert (version.returncode, version.stderr) == (0, "")
    assert version.stdout == run_cli(None, "version").stdout
    for args in (("-h",), ("users", "-h"), ("serve", "-h"), ("models", "set", "-h")):
        result = run_cli(None, *args)
        assert (result.returncode, result.stderr) == (0, ""), args
        assert result.stdout == run_cli(None, *args[:-1], "--help").stdout


def test_migrate_applies_once_then_has_nothing_to_do(tmp_path: Path) -> None:
    fresh = Box.create(tmp_path)
    first = fresh.ok("migrate")
    assert fresh.db_path.is_file()
    version = re.search(r"schema version (\d+)", first)
    assert version and int(version.group(1)) >= 1
    again = fresh.ok("migrate")
    assert f"schema version {version.group(1)}" in again and "nothing to apply" in again


def test_users_create_list_show_disable_enable(space: Box) -> None:
    assert "ana@users.test" in space.ok("users", "create", "Ana@Users.test")
    listed = {u["email"]: u for u in space.json("users", "list")}
    assert listed["ana@users.test"]["status"] == "active"
    shown = space.json("users", "show", "ana@users.test")
    assert shown["email"] == "ana@users.test" and shown["credit_balance_usd"] == 0
    assert shown["keys"] == []
    space.ok("users", "disable", "ana@users.test")
    assert space.json("users", "show", "ana@users.test")["status"] == "disabled"
    space.ok("users", "enable", "ana@users.test")
    assert space.json("users", "show", "ana@users.test")["status"] == "active"
    assert "ana@users.test" in space.ok("users", "list")  # the human table


@pytest.mark.parametrize(
    "args",
    [
        ("users", "show", "nobody@users.test"),
        ("users", "disable", "nobody@users.test"),
        ("users", "enable", "nobody@users.test"),
        ("users", "create", "not-an-email"),
        ("users", "show"),
        ("users", "frobnicate"),
        ("no-such-command",),
    ],
)
def test_user_mistakes_fail_with_one_line(space: Box, args: tuple[str, ...]) -> None:
    space.fail(*args)


def test_a_duplicate_user_is_refused(space: Box) -> None:
    space.ok("users", "create", "dup@users.test")
    assert "dup@users.test" in space.fail("users", "create", "dup@users.test")


def test_credit_adds_and_removes_through_the_ledger(space: Box) -> None:
    space.ok("users", "create", "cred@users.test")
    space.ok("credit", "cred@users.test", "12.5", "--reason", "welcome")
    space.ok("credit", "cred@users.test", "-2.25", "--reason", "refund of a test")
    space.ok("credit", "cred@users.test", "0.000000001", "--reason", "one nano-dollar")
    shown = space.json("users", "show", "cred@users.test")
    assert shown["credit_balance_usd"] == pytest.approx(10.250000001, abs=1e-12)
    reasons = space.sql(
        "SELECT l.amount_nanos, l.reason FROM ledger_entry l JOIN user u ON u.id = l.user_id "
        "WHERE u.email = ? ORDER BY l.id",
        ("cred@users.test",),
    )
    assert reasons == [
        (12_500_000_000, "welcome"),
        (-2_250_000_000, "refund of a test"),
        (1, "one nano-dollar"),
    ]


@pytest.mark.parametrize(
    "args",
    [
        ("credit", "cred2@users.test", "5"),  # --reason is required
        ("credit", "cred2@users.test", "five", "--reason", "x"),
        ("credit", "cred2@users.test", "NaN", "--reason", "x"),
        ("credit", "cred2@users.test", "0.0000000001", "--reason", "finer than nano"),
        ("credit", "cred2@users.test", "-5", "--reason", "below zero"),
        ("credit", "nobody@users.test", "5", "--reason", "x"),
        ("credit", "cred2@users.test", "1e999999999", "--reason", "past Decimal's range"),
        ("credit", "cred2@users.test", "1.00000000000000000000000000000001", "--reason", "x"),
    ],
)
def test_credit_mistakes_fail_and_change_nothing(space: Box, args: tuple[str, ...]) -> None:
    if not space.sql("SELECT 1 FROM user WHERE email = 'cred2@users.test'"):
        space.ok("users", "create", "cred2@users.test")
    line = space.fail(*args)
    assert "unexpected" not in line, line
    assert space.json("users", "show", "cred2@users.test")["credit_balance_usd"] == 0


def test_keys_create_prints_the_full_key_once(space: Box) -> None:
    space.ok("users", "create", "keys@users.test")
    result = space.cli("keys", "create", "keys@users.test", "--name", "laptop")
    assert result.returncode == 0, result.stderr
    full_key = result.stdout.strip()
    assert FULL_KEY.match(full_key), result.stdout
    listed = space.json("keys", "list", "keys@users.test")
    assert [(k["name"], k["key_prefix"]) for k in listed] == [("laptop", full_key[:7])]
    assert set(listed[0]) >= {"id", "key_prefix", "name", "created_at", "last_used_at"}
    for shown in (
        space.ok("keys", "list", "keys@users.test"),
        space.ok("keys", "list", "keys@users.test", "--json"),
        space.ok("users", "show", "keys@users.test", "--json"),
        space.ok("users", "list", "--json"),
    ):
        assert full_key not in shown
    assert full_key.encode() not in space.db_path.read_bytes()


def test_keys_create_without_a_name_and_revoke(space: Box) -> None:
    space.ok("users", "create", "rev@users.test")
    assert FULL_KEY.match(space.ok("keys", "create", "rev@users.test").strip())
    (key,) = space.json("keys", "list", "rev@users.test")
    assert is_uuid4(key["id"])
    assert space.ok("keys", "revoke", key["id"][:8]).startswith(f"revoked key {key['id']} (")
    assert space.json("keys", "list", "rev@users.test") == []
    assert (
        space.fail("keys", "revoke", key["id"]) == f"error: no active API key with id {key['id']!r}"
    )
    assert space.fail("keys", "revoke", "not-a-number") == "error: no active API key with that id"
    huge = "9" * 25  # past SQLite's integers: no key's id starts so either
    assert space.fail("keys", "revoke", huge) == f"error: no active API key with id {huge!r}"
    assert "old numeric id" in space.fail("keys", "revoke", "1")
    space.fail("keys", "create", "nobody@users.test")
    space.fail("keys", "list", "nobody@users.test")


def test_providers_add_list_key_add_disable_enable(space: Box) -> None:
    secret = "sk-provider-secret-abcdef123456"
    space.ok("providers", "add", "prov1", "--kind", "openai", "--key", secret)
    space.ok(
        "providers", "add", "prov2", "--kind", "anthropic",
        "--base-url", "http://127.0.0.1:9/v1", "--key", "sk-ant-second-987654",
    )  # fmt: skip
    listed = {p["name"]: p for p in space.json("providers", "list")}
    assert listed["prov1"]["kind"] == "openai" and listed["prov1"]["enabled"] is True
    assert listed["prov2"]["kind"] == "anthropic"
    assert listed["prov2"]["base_url"] == "http://127.0.0.1:9/v1"
    assert len(listed["prov1"]["keys"]) == 1
    space.ok("providers", "key-add", "prov1", "--key", "sk-provider-third-000111")
    assert len({p["name"]: p for p in space.json("providers", "list")}["prov1"]["keys"]) == 2
    space.ok("providers", "disable", "prov1")
    assert {p["name"]: p for p in space.json("providers", "list")}["prov1"]["enabled"] is False
    space.ok("providers", "enable", "prov1")
    assert {p["name"]: p for p in space.json("providers", "list")}["prov1"]["enabled"] is True
    for shown in (space.ok("providers", "list"), space.ok("providers", "list", "--json")):
        assert secret not in shown and "sk-provider-third-000111" not in shown
    assert secret.encode() not in space.db_path.read_bytes()


@pytest.mark.parametrize(
    "args",
    [
        ("providers", "add", "p-bad", "--kind", "cohere", "--key", "k"),
        ("providers", "add", "p-bad", "--kind", "openai"),  # --key is required
        ("providers", "add", "p-bad", "--key", "k"),  # --kind is required
        ("providers", "add", "p-bad", "--kind", "openai", "--base-url", "ftp://x", "--key", "k"),
        ("providers", "key-add", "nope", "--key", "k"),
        ("providers", "disable", "nope"),
        ("providers", "enable", "nope"),
    ],
)
def test_provider_mistakes_fail_with_one_line(space: Box, args: tuple[str, ...]) -> None:
    space.fail(*args)
    assert "p-bad" not in space.ok("providers", "list")


def test_a_duplicate_provider_is_refused(space: Box) -> None:
    space.ok("providers", "add", "dupprov", "--kind", "openai", "--key", "k1")
    assert "dupprov" in space.fail("providers", "add", "dupprov", "--kind", "openai", "--key", "k")


def test_models_set_with_every_option_list_disable_enable(space: Box) -> None:
    space.ok("providers", "add", "mprov", "--kind", "openai", "--key", "sk-m")
    space.ok("models", "set", "mprov/gpt-x", "--input-per-1m", "1.25", "--output-per-1m", "10")
    space.ok(
        "models", "set", "local/llama-3.3-70b", "--input-per-1m", "0.01",
        "--output-per-1m", "0.02", "--provider", "mprov", "--upstream-model", "llama3.3:70b",
        "--max-output-tokens", "4096",
    )  # fmt: skip
    listed = {m["id"]: m for m in space.json("models", "list")}
    gpt, llama = listed["mprov/gpt-x"], listed["local/llama-3.3-70b"]
    assert (gpt["provider"], gpt["upstream_model"]) == ("mprov", "gpt-x")
    assert (gpt["input_per_1m"], gpt["output_per_1m"]) == (1.25, 10)
    assert (llama["provider"], llama["upstream_model"]) == ("mprov", "llama3.3:70b")
    assert (llama["input_per_1m"], llama["output_per_1m"]) == (0.01, 0.02)
    assert llama["max_output_tokens"] == 4096 and llama["enabled"] is True
    space.ok("models", "disable", "local/llama-3.3-70b")
    assert {m["id"]: m for m in space.json("models", "list")}["local/llama-3.3-70b"][
        "enabled"
    ] is False
    space.ok("models", "enable", "local/llama-3.3-70b")
    assert "local/llama-3.3-70b" in space.ok("models", "list")


def test_models_set_again_changes_prices_and_keeps_the_rest(space: Box) -> None:
    """A price change must not reset the provider, upstream name or output cap set before."""
    space.ok("providers", "add", "kprov", "--kind", "openai", "--key", "sk-k")
    space.ok(
        "models", "set", "team/llama", "--input-per-1m", "0.1", "--output-per-1m", "0.2",
        "--provider", "kprov", "--upstream-model", "llama-3.3-70b", "--max-output-tokens", "2048",
    )  # fmt: skip
    space.ok("models", "set", "team/llama", "--input-per-1m", "0.3", "--output-per-1m", "0.4")
    model = {m["id"]: m for m in space.json("models", "list")}["team/llama"]
    assert (model["input_per_1m"], model["output_per_1m"]) == (0.3, 0.4)
    assert (model["provider"], model["upstream_model"]) == ("kprov", "llama-3.3-70b")
    assert model["max_output_tokens"] == 2048


@pytest.mark.parametrize(
    "args",
    [
        ("models", "set", "nope/x", "--input-per-1m", "1", "--output-per-1m", "1"),
        ("models", "set", "no-slash", "--input-per-1m", "1", "--output-per-1m", "1"),
        ("models", "set", "mbad/x", "--input-per-1m", "abc", "--output-per-1m", "1"),
        ("models", "set", "mbad/x", "--input-per-1m", "-1", "--output-per-1m", "1"),
        ("models", "set", "mbad/x", "--input-per-1m", "1e400", "--output-per-1m", "1"),
        ("models", "set", "mbad/x", "--input-per-1m", "1", "--output-per-1m", "Infinity"),
        ("models", "set", "mbad/x", "--input-per-1m", "1e-999999999", "--output-per-1m", "1"),
        ("models", "set", "mbad/x", "--input-per-1m", "1e999999999", "--output-per-1m", "1"),
        (
            "models",
            "set",
            "mbad/x",
            "--input-per-1m",
            "1",
            "--output-per-1m",
            "1",
            "--max-output-tokens",
            "9" * 25,
        ),
        ("models", "set", "mbad/x", "--input-per-1m", "1"),  # --output-per-1m is required
        (
            "models",
            "set",
            "mbad/x",
            "--input-per-1m",
            "1",
            "--output-per-1m",
            "1",
            "--max-output-tokens",
            "0",
        ),
        ("models", "disable", "mbad/none"),
        ("models", "enable", "mbad/none"),
    ],
)
def test_model_mistakes_fail_with_one_line(space: Box, args: tuple[str, ...]) -> None:
    if "mbad" not in space.ok("providers", "list"):
        space.ok("providers", "add", "mbad", "--kind", "openai", "--key", "sk-bad")
    line = space.fail(*args)
    assert "Traceback" not in line and "unexpected" not in line, line
    assert "mbad/x" not in space.ok("models", "list")


def test_every_list_and_show_command_prints_json(space: Box) -> None:
    space.ok("users", "create", "json@users.test")
    for args in (
        ("users", "list"),
        ("users", "show", "json@users.test"),
        ("keys", "list", "json@users.test"),
        ("providers", "list"),
        ("models", "list"),
    ):
        parsed = space.json(*args)
        assert isinstance(parsed, list | dict), args
        assert isinstance(parsed, dict) == (args[1] == "show"), args  # one object, else a list
    # what they print is the data, not just any JSON
    assert "json@users.test" in {u["email"] for u in space.json("users", "list")}
    shown = space.json("users", "show", "json@users.test")
    assert (shown["email"], shown["status"], shown["keys"]) == ("json@users.test", "active", [])
    assert space.json("keys", "list", "json@users.test") == []


def test_backup_writes_a_consistent_copy(space: Box, tmp_path: Path) -> None:
    space.ok("users", "create", "backup@users.test")
    target = tmp_path / "copies" / "box.db"
    space.ok("backup", str(target))
    copy = apsw.Connection(str(target))
    try:
        found = list(copy.execute("SELECT email FROM user WHERE email = 'backup@users.test'"))
        assert found == [("backup@users.test",)]
        assert list(copy.execute("PRAGMA integrity_check")) == [("ok",)]
    finally:
        copy.close()
    space.fail("backup", str(target))  # an existing file is never overwritten


def test_doctor_passes_then_names_a_tampered_account(tmp_path: Path) -> None:
    fresh = Box.create(tmp_path)
    fresh.ok("users", "create", "tamper@users.test")
    fresh.ok("credit", "tamper@users.test", "5", "--reason", "before tampering")
    assert fresh.cli("doctor").returncode == 0
    fresh.sql("UPDATE user SET balance_nanos = balance_nanos + 1 WHERE email = 'tamper@users.test'")
    result = fresh.cli("doctor")
    assert result.returncode == 1
    error_line(result)
    assert "tamper@users.test" in result.stdout


def test_init_writes_a_private_config_once_unless_forced(tmp_path: Path) -> None:
    target = tmp_path / "codelace.toml"
    result = run_cli(None, "init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    text = target.read_text()
    secret = re.search(r'^secret_key = "(.+)"$', text, re.M)
    assert secret and len(secret.group(1)) >= 32
    error_line(run_cli(None, "init", cwd=tmp_path))
    assert target.read_text() == text
    assert run_cli(None, "init", "--force", cwd=tmp_path).returncode == 0
    assert run_cli(None, "users", "list", cwd=tmp_path).returncode == 0  # the file it wrote loads


def test_every_command_works_on_built_in_defaults_with_no_config(tmp_path: Path) -> None:
    for args in (
        ("migrate",),
        ("users", "create", "nocfg@users.test"),
        ("credit", "nocfg@users.test", "3", "--reason", "defaults"),
        ("keys", "create", "nocfg@users.test"),
        ("providers", "add", "nocfg", "--kind", "openai", "--key", "sk-nocfg"),
        ("models", "set", "nocfg/m", "--input-per-1m", "1", "--output-per-1m", "2"),
        ("users", "list", "--json"),
        ("doctor",),
        ("backup", "copy.db"),
    ):
        result = run_cli(None, *args, cwd=tmp_path)
        assert result.returncode == 0, (args, result.stderr)
    assert (tmp_path / "data" / "codelace.db").is_file()
    assert (tmp_path / "data" / "secret_key").is_file()
    assert (tmp_path / "copy.db").is_file()


def test_serve_flags_override_config_and_environment(tmp_path: Path) -> None:
    box = Box.create(tmp_path)
    port = free_port()
    server = ServerProcess(box.config, port, env={"CODELACE_SERVER_PORT": str(free_port())})
    server.start("--host", "127.0.0.1", "--port", str(port), "--workers", "2")
    try:
        assert httpx.get(server.base_url + "/healthz").json() == {"status": "ok"}
        assert box.db_path.is_file()  # serve migrated the database first
        assert run_cli(box.config, "migrate").stdout.count("nothing to apply") == 1
        box.ok("users", "create", "live@users.test")  # the CLI writes while serve runs
        box.ok("backup", str(tmp_path / "live-copy.db"))
        assert (tmp_path / "live-copy.db").stat().st_size > 0
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize(
    "args",
    [
        ("serve", "--port", "0"),
        ("serve", "--port", "http"),
        ("serve", "--workers", "0"),
    ],
)
def test_serve_refuses_bad_flags_with_one_line(space: Box, args: tuple[str, ...]) -> None:
    space.fail(*args)


def test_admin_refuses_a_bad_config_before_opening_a_screen(tmp_path: Path) -> None:
    """`admin` (driven under a pty in tests/admin/test_cli_pty.py) checks its config first."""
    box = Box.create(tmp_path, server={"prot": 1})
    assert "server.prot" in box.fail("admin")
    assert "dashboard" in box.ok("admin", "--help").lower()


def test_help_lists_every_spec_command() -> None:
    result = run_cli(None, "--help")
    assert result.returncode == 0
    for name in (
        "serve", "admin", "init", "migrate", "users", "credit", "keys", "providers", "models",
        "backup", "doctor", "version",
    ):  # fmt: skip
        assert re.search(rf"^\s+{name}\b", result.stdout, re.M), name
    assert "--config" in result.stdout


def test_tiny_prices_print_in_plain_notation(space: Box) -> None:
    space.ok("providers", "add", "tiny", "--kind", "openai", "--key", "sk-tiny")
    said = space.ok("models", "set", "tiny/m", "--input-per-1m", "0.000001", "--output-per-1m", "2")
    assert "$0.000001 in / $2 out" in said
    row = next(line for line in space.ok("models", "list").splitlines() if "tiny/m" in line)
    assert "0.000001" in row.split() and "e-" not in row


def test_serve_on_a_busy_port_is_one_line(space: Box) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = space.fail("serve", "--port", str(port))
    assert str(port) in line


def test_a_database_from_a_newer_version_is_refused_in_one_line(tmp_path: Path) -> None:
    """README "Upgrading": an older codelace-box refuses a newer schema (serve too)."""
    newer = Box.create(tmp_path)
    newer.ok("migrate")
    newer.sql("INSERT INTO schema_migration VALUES (999, 'from the future', '2030-01-01')")
    assert "999" in newer.fail("serve")
    assert "999" in newer.fail("users", "list")
    assert newer.cli("doctor").returncode == 1


@pytest.mark.parametrize("args", [(), ("users",), ("keys",), ("providers",), ("models",)])
def test_a_missing_command_is_one_error_line_with_the_help_on_stdout(
    args: tuple[str, ...],
) -> None:
    result = run_cli(None, *args)
    assert result.returncode == 2
    assert "missing command" in error_line(result)
    assert "Usage:" in result.stdout


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (("serve",), ["--host", "--port", "--workers"]),
        (("init",), ["--force"]),
        (("credit",), ["--reason"]),
        (("keys", "create"), ["--name"]),
        (("providers", "add"), ["--kind", "--base-url", "--key"]),
        (("providers", "key-add"), ["--key"]),
        (
            ("models", "set"),
            ["--input-per-1m", "--output-per-1m", "--provider", "--upstream-model"],
        ),
        (("models", "set"), ["--max-output-tokens"]),
    ],
)
def test_every_spec_option_is_documented_in_help(
    command: tuple[str, ...], options: list[str]
) -> None:
    result = run_cli(None, *command, "--help")
    assert result.returncode == 0, result.stderr
    for option in options:
        assert re.search(rf"^\s+{re.escape(option)}\b", result.stdout, re.M), option
