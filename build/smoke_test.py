"""Smoke test of the single executable (`make binary-test`): dist/codelace-box and nothing else.

Every step runs the built binary as an operator would, as real processes on 127.0.0.1: the
CLI (init, migrate, doctor, providers, models, credit, backup), `serve` with a fake OpenAI
upstream, sign-in by code, a streamed and a non-streamed completion through the `openai` SDK
and the balance they debited, a Stripe top-up against the Stripe double, `admin` on a
pseudo-terminal, `serve --workers 2`, and SIGTERM
leaving neither a process nor PyInstaller's unpacked folder behind. The binary's size and start
times are printed as figures at the end. CODELACE_BINARY points it at another executable.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from smoke_support import (
    BINARY,
    BinaryServer,
    Terminal,
    binary_env,
    cmdline,
    kill_tree,
    ok,
    process_tree,
    run_binary,
    sign_in,
    wait_for_workers,
    wait_gone,
)

from codelace_box import __version__
from codelace_box.db.migrate import LATEST_VERSION
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.fakes.stripe_double import StripeDouble
from tests.support import ServerProcess, base_sections, write_config

EMAIL = "smoke@example.com"
MODEL = "fake/gpt-smoke"
IN_PRICE, OUT_PRICE = "2.5", "10"  # USD per 1M tokens
CREDIT_USD = "5"
STRIPE_SECRET_KEY = "sk_test_51SmokeTestOfTheBinary000000000000000000"
STRIPE_WEBHOOK_SECRET = "whsec_smoketestofthebinarysigningsecret00"
NANOS = 1_000_000_000
FIGURES: dict[str, str] = {}

pytestmark = pytest.mark.timeout(120)


def cost_nanos(tokens_in: int, tokens_out: int) -> int:
    """What a request should cost, computed here on its own: exact, rounded up to a nano-USD."""
    usd = (Fraction(IN_PRICE) * tokens_in + Fraction(OUT_PRICE) * tokens_out) / 1_000_000
    return -(-(usd * NANOS).numerator // (usd * NANOS).denominator)


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def figures(pytestconfig: pytest.Config) -> Iterator[None]:
    """Print the measured figures after the module's tests."""
    if not BINARY.is_file():
        pytest.fail(f"{BINARY} does not exist: run `make binary` first")
    FIGURES["binary size"] = f"{BINARY.stat().st_size / 1_000_000:.1f} MB"
    yield
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for name, value in FIGURES.items():
            reporter.write_line(f"codelace-box binary: {name}: {value}")


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stripe_double() -> Iterator[StripeDouble]:
    double = StripeDouble(STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET).start()
    yield double
    double.stop()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The operator's folder for the module's server."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def config(home: Path, fake: FakeOpenAI, stripe_double: StripeDouble) -> Path:
    """A config file, a migrated database and the catalog, all made with the binary's CLI."""
    sections: dict[str, dict[str, Any]] = base_sections(home)
    sections["email"] = {"backend": "console"}
    sections["stripe"] = {
        "secret_key": stripe_double.secret_key,
        "webhook_secret": stripe_double.webhook_secret,
        "api_base": stripe_double.url,
    }
    path = write_config(home / "codelace.toml", sections)
    cli = ["--config", str(path)]
    ok(run_binary(home, *cli, "migrate"))
    provider = ["providers", "add", "fake", "--kind", "openai", "--base-url", fake.base_url]
    ok(run_binary(home, *cli, *provider, "--key", "sk-smoke-upstream-0001"))
    prices = ["--input-per-1m", IN_PRICE, "--output-per-1m", OUT_PRICE]
    ok(run_binary(home, *cli, "models", "set", MODEL, *prices, "--upstream-model", "gpt-4o-mini"))
    return path


@pytest.fixture(scope="module")
def server(home: Path, config: Path) -> Iterator[ServerProcess]:
    """One single-worker server for the module's HTTP tests, stopped by SIGTERM at the end."""
    import tomllib

    port = int(tomllib.loads(config.read_text())["server"]["port"])
    process = BinaryServer(config, port, env=binary_env(home / "tmp")).start(wait=60)
    assert process.process is not None
    tree = process_tree(process.process.pid)
    yield process
    try:
        assert process.stop() == 0, process.log_text()
    finally:
        kill_tree(tree)


@pytest.fixture(scope="module")
def account(server: ServerProcess, home: Path, config: Path) -> dict[str, Any]:
    """The smoke user, signed in by code, with CREDIT_USD of credit added by the CLI."""
    signed_in = sign_in(server, EMAIL)
    ok(run_binary(home, "--config", str(config), "credit", EMAIL, CREDIT_USD, "--reason", "smoke"))
    return signed_in


@pytest.fixture
def sdk(server: ServerProcess, account: dict[str, Any]) -> Iterator[openai.OpenAI]:
    key = str(account["api_key"])
    with openai.OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0) as client:
        yield client


@pytest.fixture
def cli(home: Path, config: Path) -> Callable[..., str]:
    """Run a command of the binary on the module's config; returns its stdout."""
    return lambda *args: ok(run_binary(home, "--config", str(config), *args))


# --- the CLI ------------------------------------------------------------------------------


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    timings = []
    for _ in range(3):
        started = time.monotonic()
        out = ok(run_binary(tmp_path, "version", env=binary_env(tmp_path / "tmp")))
        timings.append(time.monotonic() - started)
        assert out.strip() == f"codelace-box {__version__}"
    FIGURES["`version` wall time (best of 3)"] = f"{min(timings):.2f} s"


def test_version_verbose_names_the_library_versions(tmp_path: Path) -> None:
    out = ok(run_binary(tmp_path, "version", "--verbose", env=binary_env(tmp_path / "tmp")))
    assert "build: one-file binary (PyInstaller)" in out
    libraries = next(line for line in out.splitlines() if line.startswith("libraries: "))
    assert "unknown" not in libraries, libraries  # read from the packages' metadata


def test_init_migrate_doctor_in_an_empty_folder(tmp_path: Path) -> None:
    env = binary_env(tmp_path / "tmp")
    assert ok(run_binary(tmp_path, "init", env=env)).startswith("wrote codelace.toml")
    assert (tmp_path / "codelace.toml").stat().st_mode & 0o077 == 0, "secrets: owner only"
    written = (tmp_path / "codelace.toml").read_text()
    assert re.search(r'^secret_key = "[^"]{32,}"$', written, re.MULTILINE)
    assert run_binary(tmp_path, "init", env=env).returncode == 1, "init must not overwrite"

    # No --config: ./codelace.toml is found, the database goes to ./data/codelace.db.
    out = ok(run_binary(tmp_path, "migrate", env=env))
    assert out.strip() == (
        f"set up a new database at schema version {LATEST_VERSION} (all {LATEST_VERSION} "
        "migrations)"
    )
    assert (tmp_path / "data" / "codelace.db").is_file()
    assert ok(run_binary(tmp_path, "migrate", env=env)).strip() == (
        f"already at schema version {LATEST_VERSION}, nothing to do"
    )
    assert ok(run_binary(tmp_path, "doctor", env=env)).startswith("ok: schema version")


def test_a_failing_command_says_why_in_one_line(tmp_path: Path) -> None:
    result = run_binary(tmp_path, "users", "show", "nobody@example.com")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")


def test_serve_with_a_bad_config_exits_78_through_the_launcher(tmp_path: Path) -> None:
    """systemd sees the launcher's status: 78 (EX_CONFIG) must come through it, or the README's
    RestartPreventExitStatus=78 would not stop the restarts."""
    (tmp_path / "codelace.toml").write_text("[server]\nport = \n")
    result = run_binary(tmp_path, "serve", env=binary_env(tmp_path / "tmp"))
    assert result.returncode == 78, result.stderr
    assert result.stderr.count("\n") == 1 and "not valid TOML" in result.stderr


# --- serve --------------------------------------------------------------------------------


def test_healthz_and_the_catalog(server: ServerProcess) -> None:
    answer = httpx.get(server.base_url + "/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}
    assert answer.headers["x-request-id"]
    models = httpx.get(server.base_url + "/v1/models").json()
    assert [m["id"] for m in models["data"]] == [MODEL]


def test_the_portal_and_its_static_files_are_in_the_binary(server: ServerProcess) -> None:
    shell = httpx.get(server.base_url + "/")
    assert shell.status_code == 200 and shell.headers["cache-control"] == "no-store"
    found = re.search(r'src="(/portal/assets/[0-9a-f]{16}/main\.js)"', shell.text)
    assert found, shell.text
    for name in ("main.js", "keys.js", "app.css"):
        asset = httpx.get(server.base_url + found.group(1).replace("main.js", name))
        assert asset.status_code == 200 and len(asset.content) > 500, name
        assert "immutable" in asset.headers["cache-control"]


def test_errors_have_the_openai_envelope(server: ServerProcess) -> None:
    answer = httpx.get(server.base_url + "/api/v1/auth/me")
    assert answer.status_code == 401
    assert set(answer.json()["error"]) >= {"message", "type", "code"}


def test_sign_in_by_code_gives_a_working_key(
    server: ServerProcess, account: dict[str, Any]
) -> None:
    assert account["email"] == EMAIL
    assert str(account["api_key"]).startswith("cl_")
    headers = {"authorization": f"Bearer {account['api_key']}"}
    answer = httpx.get(server.base_url + "/api/v1/auth/me", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["email"] == EMAIL


def balance_nanos(server: ServerProcess, account: dict[str, Any]) -> int:
    """The account's balance as GET /api/v1/customer/balance reports it, in nano-USD."""
    headers = {"authorization": f"Bearer {account['api_key']}"}
    answer = httpx.get(server.base_url + "/api/v1/customer/balance", headers=headers)
    assert answer.status_code == 200, answer.text
    return round(answer.json()["credit_balance_usd"] * NANOS)


def test_a_completion_through_the_sdk_debits_the_balance(
    server: ServerProcess, fake: FakeOpenAI, sdk: openai.OpenAI, account: dict[str, Any]
) -> None:
    before = balance_nanos(server, account)
    fake.push(Reply(content="Plain answer.", prompt_tokens=120, completion_tokens=30))
    messages: Any = [{"role": "user", "content": "Say something."}]
    raw = sdk.chat.completions.with_raw_response.create(model=MODEL, messages=messages)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Plain answer."
    assert completion.usage is not None and completion.usage.completion_tokens == 30
    assert fake.requests[-1].body["model"] == "gpt-4o-mini"
    assert round(float(raw.headers["x-codelace-cost-usd"]) * NANOS) == cost_nanos(120, 30)
    assert balance_nanos(server, account) == before - cost_nanos(120, 30)


def test_a_streamed_completion_through_the_sdk_debits_the_balance(
    server: ServerProcess, fake: FakeOpenAI, sdk: openai.OpenAI, account: dict[str, Any]
) -> None:
    before = balance_nanos(server, account)
    fake.push(Reply(content="A streamed answer in words", prompt_tokens=80))  # 5 tokens out
    messages: Any = [{"role": "user", "content": "Say something."}]
    stream = sdk.chat.completions.create(
        model=MODEL, messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "A streamed answer in words"
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (80, 5)
    assert balance_nanos(server, account) == before - cost_nanos(80, 5)

    headers = {"authorization": f"Bearer {account['api_key']}"}
    report = httpx.get(server.base_url + "/api/v1/customer/usage", headers=headers).json()
    assert report["recent_requests"][0]["stream"] is True
    assert report["recent_requests"][0]["model"] == MODEL


def test_a_stripe_top_up_credits_the_balance(
    server: ServerProcess, stripe_double: StripeDouble, account: dict[str, Any]
) -> None:
    # The box imports the stripe library lazily: this shows the binary carries what it uses.
    before = balance_nanos(server, account)
    headers = {"authorization": f"Bearer {account['api_key']}"}
    answer = httpx.post(
        server.base_url + "/api/v1/stripe/checkout", headers=headers, json={"amount_usd": 10}
    )
    assert answer.status_code == 200, answer.text
    session = stripe_double.session_by_url(answer.json()["checkout_url"])
    body, signed = stripe_double.webhook(stripe_double.complete(session["id"]))
    delivered = httpx.post(server.base_url + "/api/v1/stripe/webhook", content=body, headers=signed)
    assert delivered.status_code == 200, delivered.text
    assert balance_nanos(server, account) == before + 10 * NANOS
    payments = httpx.get(server.base_url + "/api/v1/customer/payment", headers=headers).json()
    topups = [(p["status"], p["amount_usd"]) for p in payments if p["kind"] == "topup"]
    assert topups == [("completed", 10)]


def test_doctor_and_backup_while_serving(
    server: ServerProcess, cli: Callable[..., str], home: Path
) -> None:
    assert cli("doctor").startswith("ok: ")
    copy = home / "backup" / "copy.db"
    copy.parent.mkdir(exist_ok=True)
    assert cli("backup", str(copy)).startswith("backed up ")
    with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as db:
        emails = [row[0] for row in db.execute('SELECT email FROM "user"')]
    assert emails == [EMAIL]


def test_admin_starts_on_a_terminal_and_quits(
    server: ServerProcess, home: Path, config: Path, account: dict[str, Any]
) -> None:
    command = [str(BINARY), "--config", str(config), "admin"]
    terminal = Terminal(command, home, binary_env(home / "tmp-admin"))
    try:
        started = time.monotonic()
        terminal.read_until(b"F1 Dashboard")
        FIGURES["`admin` start to first screen"] = f"{time.monotonic() - started:.2f} s"
        mark = terminal.press(b"\x1bOQ")  # F2: the users screen lists the signed-in account
        terminal.read_until(EMAIL.encode(), start=mark)
        terminal.press(b"\x11")  # ctrl+q
        assert terminal.wait() == 0, terminal.output[-2000:].decode(errors="replace")
        assert terminal.output.rfind(b"\x1b[?1049l") > mark, "the screen must be restored"
        assert not wait_gone(terminal.tree)
        assert not list((home / "tmp-admin").iterdir()), "the unpacked folder must be removed"
    finally:
        terminal.close()


# --- several workers, and stopping --------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_stops_serve_and_leaves_nothing_behind(tmp_path: Path, workers: int) -> None:
    sections = base_sections(tmp_path)
    config = write_config(tmp_path / "codelace.toml", sections)
    unpack_dir = tmp_path / "tmp"
    server = BinaryServer(config, sections["server"]["port"], env=binary_env(unpack_dir))
    started = time.monotonic()
    server.start("--workers", str(workers), wait=60)
    if workers == 1:
        FIGURES["start to first /healthz (1 worker)"] = f"{time.monotonic() - started:.2f} s"
    assert server.process is not None
    tree = process_tree(server.process.pid)
    try:
        ready = wait_for_workers(server, workers)
        tree.update(process_tree(server.process.pid))
        assert ready <= set(tree), "the workers are processes of the binary"
        for _ in range(20):
            assert httpx.get(server.base_url + "/healthz").json() == {"status": "ok"}
        assert any(unpack_dir.glob("_MEI*")), "onefile unpacks under TMPDIR"

        assert server.stop() == 0, server.log_text()
        left = wait_gone(tree)
        assert not left, [cmdline(pid) for pid in left]
        assert not list(unpack_dir.iterdir()), "the unpacked folder must be removed"
        assert "Traceback" not in server.log_text()
    finally:
        kill_tree(tree)
