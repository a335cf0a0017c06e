"""Smoke test of the single executable (`make binary-test`): dist/codelace-box and nothing else.

Every step runs the built binary as an operator would, as real processes on 127.0.0.1: the
CLI, `serve` (one and two workers) with the SPEC's endpoints, and SIGTERM leaving neither a
process nor PyInstaller's unpacked folder behind. The binary's size and start times are
printed as figures at the end. CODELACE_BINARY points it at another executable.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from codelace_box import __version__
from codelace_box.db.migrate import LATEST_VERSION
from tests.support import REPO_ROOT, ServerProcess, base_sections, cli_env, write_config

BINARY = Path(os.environ.get("CODELACE_BINARY") or REPO_ROOT / "dist" / "codelace-box")
EMAIL = "smoke@example.com"
FIGURES: dict[str, str] = {}

pytestmark = pytest.mark.timeout(120)


class BinaryServer(ServerProcess):
    """`codelace-box serve` from the executable."""

    program = (str(BINARY),)


# --- helpers ------------------------------------------------------------------------------


def binary_env(unpack_dir: Path) -> dict[str, str]:
    """The child's environment: onefile unpacks under unpack_dir, so leftovers can be seen."""
    unpack_dir.mkdir(parents=True, exist_ok=True)
    return {"TMPDIR": str(unpack_dir)}


def run_binary(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the executable with args in cwd; never raises on failure."""
    return subprocess.run(
        [str(BINARY), *args],
        capture_output=True,
        text=True,
        env=cli_env(env),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The stdout of a command that must have succeeded."""
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr.strip()}"
    return result.stdout


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time) of every process, from /proc."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        table[int(entry.name)] = (int(fields[1]), fields[19])
    return table


def process_tree(root: int) -> dict[int, str]:
    """root and all its descendants: pid -> start time (to tell a reused pid apart)."""
    table = process_table()
    tree = {root: table[root][1]} if root in table else {}
    grew = True
    while grew:
        grew = False
        for pid, (parent, started) in table.items():
            if parent in tree and pid not in tree:
                tree[pid] = started
                grew = True
    return tree


def survivors(tree: dict[int, str]) -> list[int]:
    """The pids of the tree that still run (same pid, same start time, not a zombie)."""
    table = process_table()
    alive = []
    for pid, started in tree.items():
        if pid in table and table[pid][1] == started:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
            if state != "Z":
                alive.append(pid)
    return alive


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_for_workers(server: ServerProcess, workers: int) -> set[int]:
    """The pids of the server's workers, once all of them logged that they are ready."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready = {int(pid) for pid in re.findall(r"Worker ready \[(\d+)\]", server.log_text())}
        if len(ready) >= workers:
            assert len(ready) == workers, server.log_text()
            return ready
        time.sleep(0.05)
    raise AssertionError(f"{workers} workers not ready:\n{server.log_text()}")


def sign_in(server: ServerProcess, email: str) -> str:
    """Sign in by code (email.backend console: the code is read from the server log)."""
    answer = httpx.post(server.base_url + "/api/v1/auth/otp/request", json={"email": email})
    assert answer.status_code == 200, answer.text
    pattern = re.compile(rf"sign-in code for {re.escape(email)}: (\d{{6}})")
    deadline = time.monotonic() + 10
    while not (found := pattern.findall(server.log_text())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert found, "no sign-in code in the server log"
    verify = {"email": email, "code": found[-1]}
    answer = httpx.post(server.base_url + "/api/v1/auth/otp/verify", json=verify)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["email"] == email
    assert body["api_key"].startswith("cl_")
    return str(body["api_key"])


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
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The operator's folder for the module's server."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def config(home: Path) -> Path:
    sections: dict[str, dict[str, Any]] = base_sections(home)
    sections["email"] = {"backend": "console"}
    return write_config(home / "codelace.toml", sections)


@pytest.fixture(scope="module")
def server(home: Path, config: Path) -> Iterator[ServerProcess]:
    """One single-worker server for the module's HTTP tests, stopped by SIGTERM at the end."""
    import tomllib

    port = int(tomllib.loads(config.read_text())["server"]["port"])
    process = BinaryServer(config, port, env=binary_env(home / "tmp")).start(wait=60)
    yield process
    assert process.stop() == 0, process.log_text()


# --- the CLI ------------------------------------------------------------------------------


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    timings = []
    for _ in range(3):
        started = time.monotonic()
        out = ok(run_binary(tmp_path, "version", env=binary_env(tmp_path / "tmp")))
        timings.append(time.monotonic() - started)
        assert out.strip() == f"codelace-box {__version__}"
    FIGURES["`version` wall time (best of 3)"] = f"{min(timings):.2f} s"


def test_init_migrate_doctor_in_an_empty_folder(tmp_path: Path) -> None:
    env = binary_env(tmp_path / "tmp")
    assert ok(run_binary(tmp_path, "init", env=env)).startswith("wrote codelace.toml")
    assert (tmp_path / "codelace.toml").stat().st_mode & 0o077 == 0, "secrets: owner only"
    written = (tmp_path / "codelace.toml").read_text()
    assert re.search(r'^secret_key = "[^"]{32,}"$', written, re.MULTILINE)
    assert run_binary(tmp_path, "init", env=env).returncode == 1, "init must not overwrite"

    # No --config: ./codelace.toml is found, the database goes to ./data/codelace.db.
    out = ok(run_binary(tmp_path, "migrate", env=env))
    assert out.startswith(f"schema version {LATEST_VERSION} ")
    assert (tmp_path / "data" / "codelace.db").is_file()
    assert "nothing to apply" in ok(run_binary(tmp_path, "migrate", env=env))
    assert ok(run_binary(tmp_path, "doctor", env=env)).startswith("ok: schema version")


def test_a_failing_command_says_why_in_one_line(tmp_path: Path) -> None:
    result = run_binary(tmp_path, "users", "show", "nobody@example.com")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")


# --- serve --------------------------------------------------------------------------------


def test_healthz(server: ServerProcess) -> None:
    answer = httpx.get(server.base_url + "/healthz")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}
    assert answer.headers["x-request-id"]


def test_errors_have_the_openai_envelope(server: ServerProcess) -> None:
    answer = httpx.get(server.base_url + "/api/v1/auth/me")
    assert answer.status_code == 401
    assert set(answer.json()["error"]) >= {"message", "type", "code"}


def test_sign_in_by_code_gives_a_working_key(server: ServerProcess) -> None:
    key = sign_in(server, EMAIL)
    answer = httpx.get(
        server.base_url + "/api/v1/auth/me", headers={"authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["email"] == EMAIL


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
    ready = wait_for_workers(server, workers)
    tree = process_tree(server.process.pid)
    assert ready <= set(tree), "workers are children of the binary"
    for _ in range(20):
        assert httpx.get(server.base_url + "/healthz").json() == {"status": "ok"}
    assert any(unpack_dir.glob("_MEI*")), "onefile should unpack under TMPDIR"

    assert server.stop() == 0, server.log_text()
    deadline = time.monotonic() + 10
    while survivors(tree) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not survivors(tree), [cmdline(pid) for pid in survivors(tree)]
    assert not list(unpack_dir.iterdir()), "the unpacked folder must be removed"
    assert "Traceback" not in server.log_text()
