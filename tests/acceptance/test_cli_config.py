"""Acceptance of docs/configuration.md and the `--config` rule, from outside.

The key table of docs/configuration.md is written out below as the contract. Every key must be
accepted in the file and as CODELACE_<SECTION>_<KEY>; a wrong type, an unknown key or section
must stop the start with one line naming the file (or variable), the key and what was expected.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.cli_tools import error_line
from tests.support import (
    HEALTHY_WAIT_SEC,
    TLS,
    ServerProcess,
    cli_env,
    free_port,
    run_cli,
    write_config,
)

pytestmark = pytest.mark.timeout(120)

# section.key: (documented default, a valid non-default value, a value of the wrong type)
SPEC_KEYS: dict[str, tuple[Any, Any, Any]] = {
    "server.host": ("127.0.0.1", "127.0.0.2", 127),
    "server.port": (8080, 9090, "8080"),
    "server.public_url": ("", "https://llm.example.com", 443),
    "server.workers": (1, 2, "two"),
    "server.max_body_bytes": (10485760, 2048, "10MB"),
    "server.secret_key": ("", "a-server-secret-of-forty-characters-xxxx", 12345),
    "database.path": ("data/codelace.db", "other/box.db", 1),
    "auth.otp_ttl_sec": (600, 300, "600s"),
    "auth.signup": ("open", "invite", True),
    "auth.allowed_email_domains": ([], ["example.com"], "example.com"),
    "email.backend": ("console", "smtp", 1),
    "email.smtp_host": ("", "127.0.0.1", 25),
    "email.smtp_port": (587, 25, "smtp"),
    "email.smtp_username": ("", "mailer", 7),
    "email.smtp_password": ("", "hunter2-mail-password", 1234),
    "email.smtp_starttls": (True, False, "yes"),
    "email.from_address": ("codelace-box@localhost", "box@example.com", 0),
    "stripe.secret_key": ("", "sk_test_0000", 1),
    "stripe.webhook_secret": ("", "whsec_0000", 2),
    "stripe.api_base": ("", "http://127.0.0.1:12111", 3),
    "stripe.min_topup_usd": (10, 5, "ten"),
    "stripe.trial_credit_usd": (1, 0, "one"),
    "stripe.currency": ("usd", "eur", 840),
    "gateway.connect_timeout_sec": (10, 2.5, "10s"),
    "gateway.read_timeout_sec": (600, 30, "600s"),
    "gateway.max_retries": (2, 0, "two"),
    # the second wave's keys (database.url is proven by the PostgreSQL suites)
    "gateway.default_context_tokens": (200000, 100000, "200k"),
    "gateway.max_upstream_body_bytes": (67108864, 1048576, "64MiB"),
    "gateway.max_sse_event_bytes": (4194304, 65536, "4MiB"),
    "gateway.key_probe_sec": (300, 60, "5m"),
    "limits.rpm": (0, 60, "sixty"),
    "limits.max_concurrent": (0, 4, "four"),
    "log.format": ("text", "json", 1),
    "metrics.enabled": (True, False, "yes"),
    "metrics.token": ("", "a-scrape-token-0123", 123456),
    "portal.enabled": (True, False, "no"),
    "backup.every_hours": (0, 24, "daily"),
    "backup.keep": (7, 3, "seven"),
    "backup.dir": ("data/backups", "elsewhere/backups", 7),
    "alerts.webhook_url": ("", "http://127.0.0.1:9/hook", 80),
    "alerts.error_rate": (0.2, 0.5, "high"),
}
SECRET_KEYS = {"server.secret_key", "email.smtp_password", "stripe.secret_key", "metrics.token"}


def _sections(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    sections: dict[str, dict[str, Any]] = {}
    for dotted, value in values.items():
        section, key = dotted.split(".")
        sections.setdefault(section, {})[key] = value
    return sections


def _env_name(dotted: str) -> str:
    return "CODELACE_" + dotted.replace(".", "_").upper()


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


def test_every_spec_key_is_accepted_in_the_file(tmp_path: Path) -> None:
    values = {dotted: spec[1] for dotted, spec in SPEC_KEYS.items()}
    config = write_config(tmp_path / "all.toml", _sections(values))
    result = run_cli(config, "users", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "other" / "box.db").is_file()  # database.path, relative to the file


def test_every_spec_key_is_accepted_as_an_environment_variable(tmp_path: Path) -> None:
    env = {_env_name(dotted): _env_text(spec[1]) for dotted, spec in SPEC_KEYS.items()}
    result = run_cli(None, "users", "list", "--json", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "other" / "box.db").is_file()  # CODELACE_DATABASE_PATH took effect


@pytest.mark.parametrize("dotted", list(SPEC_KEYS))
def test_a_wrong_type_in_the_file_names_file_key_and_expectation(
    tmp_path: Path, dotted: str
) -> None:
    wrong = SPEC_KEYS[dotted][2]
    config = write_config(tmp_path / "wrong.toml", _sections({dotted: wrong}))
    result = run_cli(config, "users", "list")
    line = error_line(result)
    assert str(config) in line and dotted in line, line
    assert re.search(r"must be (an?|one of|true|the|empty|domain|non)", line), line
    if dotted in SECRET_KEYS:
        assert str(wrong) not in line.split(dotted, 1)[1], line
    assert not (tmp_path / "data").exists(), "nothing may be created on a refused config"


@pytest.mark.parametrize(
    ("dotted", "bad"),
    [
        ("server.port", "eighty"),
        ("server.workers", "0"),
        ("server.max_body_bytes", "big"),
        ("server.public_url", "llm.example.com"),
        ("auth.otp_ttl_sec", "1.5"),
        ("auth.otp_ttl_sec", "0"),
        ("auth.signup", "closed"),
        ("auth.allowed_email_domains", "not a domain"),
        ("email.backend", "carrier-pigeon"),
        ("email.smtp_port", "70000"),
        ("email.smtp_starttls", "maybe"),
        ("email.from_address", "nobody"),
        ("stripe.api_base", "stripe.local"),
        ("stripe.min_topup_usd", "ten"),
        ("stripe.trial_credit_usd", "-1"),
        ("stripe.currency", "US Dollar"),
        ("gateway.connect_timeout_sec", "soon"),
        ("gateway.read_timeout_sec", "0"),
        ("gateway.max_retries", "-1"),
        # too big to mean anything: a float that overflows to infinity, an amount Decimal
        # cannot round to cents, a code lifetime past the last datetime (500 at sign-in)
        ("gateway.connect_timeout_sec", "1e400"),
        ("gateway.read_timeout_sec", "1e400"),
        ("stripe.min_topup_usd", "1e400"),
        ("stripe.min_topup_usd", "10000.01"),  # above the largest top-up: none could be paid
        ("stripe.trial_credit_usd", "1e20"),
        ("auth.otp_ttl_sec", "99999999999999999999"),
    ],
)
def test_a_bad_environment_value_names_the_variable_and_key(
    tmp_path: Path, dotted: str, bad: str
) -> None:
    result = run_cli(None, "users", "list", env={_env_name(dotted): bad}, cwd=tmp_path)
    line = error_line(result)
    assert _env_name(dotted) in line and dotted in line and "must be" in line, line


@pytest.mark.parametrize(
    ("toml", "names"),
    [
        ("[server]\nprot = 8080\n", ["server.prot", "port"]),
        ("[gateway]\nretries = 1\n", ["gateway.retries", "max_retries"]),
        ("[stripe]\nsecret = 'sk'\n", ["stripe.secret", "secret_key"]),
        ("[sever]\nport = 8080\n", ["sever", "server"]),
        ("port = 8080\n", ["unknown key port", "[server]"]),
        ("[server\n", ["TOML"]),
    ],
)
def test_unknown_keys_sections_and_bad_toml_are_refused(
    tmp_path: Path, toml: str, names: list[str]
) -> None:
    config = tmp_path / "codelace.toml"
    config.write_text(toml)
    line = error_line(run_cli(config, "users", "list"))
    assert str(config) in line, line
    for name in names:
        assert name in line, line


def test_an_unknown_key_from_the_environment_is_refused(tmp_path: Path) -> None:
    line = error_line(run_cli(None, "users", "list", env={"CODELACE_SERVER_PROT": "1"}))
    assert "CODELACE_SERVER_PROT" in line and "server.prot" in line


def test_a_refused_config_stops_serve_before_it_listens(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path / "codelace.toml", {"server": {"port": port, "wokers": 2}})
    line = error_line(run_cli(config, "serve", timeout=30))
    assert str(config) in line and "server.wokers" in line
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2, verify=TLS)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CODELACE_SANIC_REQUEST_TIMEOUT", "abc"),
        ("CODELACE_SANIC_SEND_TIMEOUT", "60s"),
        ("CODELACE_SANIC_KEEP_ALIVE_TIMEOUT", "-5"),
        ("CODELACE_SANIC_REQUEST_TIMEOUT", "nan"),
    ],
)
def test_a_web_server_timeout_that_is_no_number_stops_serve_before_it_listens(
    tmp_path: Path, variable: str, value: str
) -> None:
    """docs/configuration.md's CODELACE_SANIC_REQUEST_TIMEOUT=abc was taken as a string: the
    box served, logged a TypeError traceback on every connection's timeout check and never
    timed a slow client out. A timeout that is no number of seconds (at least 0) is one line
    naming the variable, and nothing listens."""
    port = free_port()
    config = write_config(tmp_path / "codelace.toml", {"server": {"port": port}})
    result = run_cli(config, "serve", env={variable: value}, timeout=30)
    line = error_line(result)
    assert line.startswith(f"error: env {variable}: "), line
    assert "must be a number" in line and "Traceback" not in result.stderr
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2, verify=TLS)


@pytest.mark.parametrize("host", ["", " 127.0.0.1", "127.0.0.1\n"])
def test_a_serve_host_flag_with_spaces_is_a_usage_error_as_in_the_config(
    tmp_path: Path, host: str
) -> None:
    """`serve --host " 127.0.0.1"` (a quoted variable with a stray space) got past the check
    server.host has in the file and failed as "cannot listen on  127.0.0.1:8080: Name or
    service not known"; --host "" as "cannot listen on :8080". Both are usage errors (exit 2)
    naming --host, as --port and --workers out of range are."""
    result = run_cli(None, "serve", "--host", host, "--port", str(free_port()), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    line = error_line(result)
    assert "--host" in line and "without spaces" in line and "cannot listen" not in line, line


def test_config_is_found_flag_then_env_then_working_dir_then_defaults(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    flag = write_config(tmp_path / "flag.toml", {"database": {"path": "flag/box.db"}})
    from_env = write_config(tmp_path / "env.toml", {"database": {"path": "env/box.db"}})
    write_config(work / "codelace.toml", {"database": {"path": "cwd/box.db"}})
    env = {"CODELACE_CONFIG": str(from_env)}
    assert run_cli(flag, "migrate", env=env, cwd=work).returncode == 0
    assert (tmp_path / "flag" / "box.db").is_file() and not (tmp_path / "env").exists()
    assert run_cli(None, "migrate", env=env, cwd=work).returncode == 0
    assert (tmp_path / "env" / "box.db").is_file() and not (work / "cwd").exists()
    assert run_cli(None, "migrate", cwd=work).returncode == 0
    assert (work / "cwd" / "box.db").is_file()
    bare = tmp_path / "bare"
    bare.mkdir()
    assert run_cli(None, "migrate", cwd=bare).returncode == 0
    assert (bare / "data" / "codelace.db").is_file()
    assert "missing.toml" in error_line(run_cli(tmp_path / "missing.toml", "migrate"))
    missing_env = {"CODELACE_CONFIG": str(tmp_path / "gone.toml")}
    assert "gone.toml" in error_line(run_cli(None, "migrate", env=missing_env, cwd=work))


def test_an_empty_config_flag_is_refused_not_taken_for_no_flag(tmp_path: Path) -> None:
    """`--config "$CFG"` with CFG unset must not quietly serve ./codelace.toml or defaults."""
    for args in (("--config", "", "migrate"), ("migrate", "--config="), ("--config", "", "init")):
        result = run_cli(None, *args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stdout)
        assert "--config" in error_line(result) and "empty" in error_line(result)
    assert list(tmp_path.iterdir()) == []  # no database, no codelace.toml


def test_a_dash_as_config_is_refused_not_written_as_a_file_named_dash(tmp_path: Path) -> None:
    """`-` (standard input, as tools take it) is no config file: `--config - init` wrote one
    named `-`, and other commands said "-: config file not found"."""
    for command in (("init",), ("migrate",), ("users", "list"), ("version", "--verbose")):
        result = run_cli(None, "--config", "-", *command, cwd=tmp_path)
        assert result.returncode == 2, (command, result.stdout)
        line = error_line(result)
        assert "'--config'" in line and "'-' (standard input) is not taken" in line, line
    result = run_cli(None, "init", env={"CODELACE_CONFIG": "-"}, cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    assert "$CODELACE_CONFIG: '-' (standard input) is not taken" in error_line(result)
    assert list(tmp_path.iterdir()) == []  # no file named '-', no database


def test_the_environment_beats_the_file(tmp_path: Path) -> None:
    config = write_config(tmp_path / "codelace.toml", {"database": {"path": "file/box.db"}})
    env = {"CODELACE_DATABASE_PATH": str(tmp_path / "env" / "box.db")}
    assert run_cli(config, "migrate", env=env).returncode == 0
    assert (tmp_path / "env" / "box.db").is_file() and not (tmp_path / "file").exists()


def test_init_writes_every_spec_key_with_its_default(tmp_path: Path) -> None:
    assert run_cli(None, "init", cwd=tmp_path).returncode == 0
    text = (tmp_path / "codelace.toml").read_text()
    written: dict[str, Any] = {}
    section = ""
    for line in text.splitlines():
        header = re.fullmatch(r"\[(\w+)\]", line)
        if header:
            section = header.group(1)
        pair = re.fullmatch(r"#? ?(\w+) = (.+)", line)
        if pair and section:
            written[f"{section}.{pair.group(1)}"] = tomllib.loads(f"v = {pair.group(2)}")["v"]
    for dotted, (default, _, _) in SPEC_KEYS.items():
        assert dotted in written, f"{dotted} missing from the file init writes"
        if dotted != "server.secret_key":
            assert written[dotted] == default, (dotted, written[dotted])
    assert len(str(written["server.secret_key"])) >= 32
    example = (Path(__file__).resolve().parents[2] / "codelace.toml.example").read_text()
    for dotted in SPEC_KEYS:
        assert re.search(rf"^# {dotted.split('.')[1]} = ", example, re.M), dotted


def test_a_configured_secret_key_is_used_and_none_is_generated(tmp_path: Path) -> None:
    env = {"CODELACE_SERVER_SECRET_KEY": "s" * 40}
    args = ("providers", "add", "p", "--kind", "openai", "--key", "sk-secret-test")
    assert run_cli(None, *args, env=env, cwd=tmp_path).returncode == 0
    assert not (tmp_path / "data" / "secret_key").exists()
    assert run_cli(None, "doctor", env=env, cwd=tmp_path).returncode == 0
    assert run_cli(None, "doctor", cwd=tmp_path).returncode == 1  # another secret: unreadable


def test_no_new_secret_is_made_over_provider_keys_stored_with_another(tmp_path: Path) -> None:
    """A database moved without its data folder's `secret_key` file (another VM, a new
    database.path) holds provider keys no secret here can read. `serve` and the CLI generated a
    new secret as on a first start: the box served 503s for every model, and a key added then
    was stored under the new secret, beside keys needing the old one. They refuse in one line
    until the file is back (or server.secret_key is set), and make no secret."""
    first, moved = tmp_path / "first", tmp_path / "moved"
    first.mkdir()
    args = ("providers", "add", "up", "--kind", "openai", "--key", "sk-stored-under-first")
    assert run_cli(None, *args, cwd=first).returncode == 0
    copy = str(moved / "data" / "codelace.db")  # a backup taken to move the box
    assert run_cli(None, "backup", copy, cwd=first).returncode == 0
    port = free_port()
    env = {"CODELACE_SERVER_PORT": str(port)}
    for command in (("providers", "key-add", "up", "--key", "sk-added-after-the-move"),
                    ("serve",)):  # fmt: skip
        line = error_line(run_cli(None, *command, env=env, cwd=moved, timeout=30))
        assert "secret_key" in line and "provider keys" in line, line
        assert not (moved / "data" / "secret_key").exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2, verify=TLS)
    (moved / "data" / "secret_key").write_bytes(b"\n")  # there, but emptied (a full disk's copy)
    line = error_line(run_cli(None, "providers", "key-add", "up", "--key", "sk-x" * 8, cwd=moved))
    assert "secret_key is empty" in line and "moved without" not in line, line
    secret = (first / "data" / "secret_key").read_bytes()
    (moved / "data" / "secret_key").write_bytes(secret)
    key_add = ("providers", "key-add", "up", "--key", "sk-added-after-the-move")
    assert run_cli(None, *key_add, cwd=moved).returncode == 0
    assert run_cli(None, "doctor", cwd=moved).returncode == 0
    fresh = tmp_path / "fresh"  # a database without provider keys: a first start makes one
    fresh.mkdir()
    assert run_cli(None, "users", "create", "a@fresh.test", cwd=fresh).returncode == 0
    assert run_cli(None, *args, cwd=fresh).returncode == 0
    assert (fresh / "data" / "secret_key").is_file()


@pytest.fixture(scope="module")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`serve` with no config file and no --config (only the port moved off 8080, by env)."""
    folder = tmp_path_factory.mktemp("defaults")
    port = free_port()
    server = ServerProcess(folder / "codelace.toml", port, env={"CODELACE_SERVER_PORT": str(port)})
    with server.log_path.open("ab") as log:
        server.process = subprocess.Popen(
            [*ServerProcess.program, "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=cli_env(server.env),
            cwd=folder,
        )
    try:
        server.wait_healthy(HEALTHY_WAIT_SEC)
        yield server
    finally:  # also when it never got healthy: not left running
        server.stop()


def test_serve_runs_on_built_in_defaults(default_server: ServerProcess) -> None:
    folder = default_server.config.parent
    assert not default_server.config.exists()
    assert (folder / "data" / "codelace.db").is_file()
    assert (folder / "data" / "secret_key").is_file()
    with httpx.Client(base_url=default_server.base_url, timeout=10, verify=TLS) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        asked = client.post("/api/v1/auth/otp/request", json={"email": "dflt@defaults.test"})
        assert asked.json() == {"email": "dflt@defaults.test", "expires_in_sec": 600}
    log = default_server.log_text()
    assert re.search(r"dflt@defaults\.test: \d{6}", log), "console mail prints the code"


def test_default_body_limit_is_10485760_bytes(default_server: ServerProcess) -> None:
    with httpx.Client(base_url=default_server.base_url, timeout=30, verify=TLS) as client:
        over = client.post(
            "/v1/chat/completions", content=b"x" * 10_485_761, headers={"content-type": "a/b"}
        )
        assert over.status_code == 413, over.text
        assert over.json()["error"]["message"]
        at_limit = client.post(
            "/v1/chat/completions", content=b"x" * 10_485_760, headers={"content-type": "a/b"}
        )
        assert at_limit.status_code != 413, at_limit.text


def test_stripe_is_off_by_default(default_server: ServerProcess) -> None:
    folder = default_server.config.parent
    run_cli(None, "users", "create", "stripe@defaults.test", cwd=folder)
    key = run_cli(None, "keys", "create", "stripe@defaults.test", cwd=folder).stdout.strip()
    headers = {"authorization": f"Bearer {key}"}
    answer = httpx.post(
        default_server.base_url + "/api/v1/stripe/setup", headers=headers, verify=TLS
    )
    assert answer.status_code == 503, answer.text
    assert "stripe" in answer.json()["error"]["message"].lower()


@pytest.mark.parametrize(
    "args",
    [
        ("--config", "{config}", "migrate"),
        ("migrate", "--config", "{config}"),
        ("migrate", "--config={config}"),
        ("users", "list", "--json", "--config", "{config}"),
    ],
)
def test_config_may_come_before_or_after_the_command(tmp_path: Path, args: tuple[str, ...]) -> None:
    config = write_config(tmp_path / "elsewhere.toml", {"database": {"path": "mine/box.db"}})
    work = tmp_path / "work"
    work.mkdir()
    result = run_cli(None, *(a.format(config=config) for a in args), cwd=work)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mine" / "box.db").is_file() and not (work / "data").exists()


@pytest.mark.parametrize(
    "args",
    [
        ("--config", "{first}", "--config", "{last}", "users", "create", "who@config.test"),
        ("--config", "{first}", "users", "create", "who@config.test", "--config", "{last}"),
        ("users", "create", "who@config.test", "--config={first}", "--config", "{last}"),
    ],
)
def test_of_two_configs_the_last_given_is_the_one_used(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    """`alias cb='codelace-box --config /etc/codelace.toml'`, then `cb users create X --config
    other.toml`: the alias's file won, as it did for `--config A --config B` (moving the
    --config after the command to the front put it before the first), so the command changed
    the other box's database without a word. The last --config given is used, as click and
    other tools take a repeated option."""
    first = write_config(tmp_path / "first.toml", {"database": {"path": "first.db"}})
    last = write_config(tmp_path / "last.toml", {"database": {"path": "last.db"}})
    result = run_cli(None, *(a.format(first=first, last=last) for a in args), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "last.db").is_file() and not (tmp_path / "first.db").exists()
