"""Test helpers shared by every suite: free ports, config files, the CLI and the server as
real processes on loopback."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from fractions import Fraction
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from tests import serve_fork
from tests.cli_fork import fork_server
from tests.pg_cluster import wanted_engine
from tests.ports import free_port  # the suites import it from here
from tests.timing import answers, seen_within  # a check counts from when it began

REPO_ROOT = Path(__file__).resolve().parent.parent
# How the CLI tests run codelace-box: the source install, or the executable named by
# CODELACE_TEST_BINARY (e.g. dist/codelace-box, relative to the repository) to hold the binary
# to the same tests.
PROGRAM: tuple[str, ...] = (
    (str(REPO_ROOT / os.environ["CODELACE_TEST_BINARY"]),)
    if os.environ.get("CODELACE_TEST_BINARY")
    else (sys.executable, "-m", "codelace_box")
)


# One TLS context for the HTTP clients of a test process, as httpx and the SDKs make by default
# (the CA bundle). They make a new one for every client and every httpx.get (30-40 ms of CPU
# each: the suite made about 2,000, most while polling a starting server), though the tests
# only speak plain HTTP on loopback.
TLS: ssl.SSLContext = httpx.create_ssl_context()
# How long a started serve has to answer /healthz: a box of several workers starts each one
# anew (every import again), 10 s and more on a loaded CI machine before its first serves
HEALTHY_WAIT_SEC = 60.0
CATALOG_SEEN_SEC = 1.0  # the SPEC: a catalog change is seen within a second
CATALOG_RELOAD_SEC = 0.6  # a worker's catalog reload period (gateway/routing.py), and a margin
ANTHROPIC_LIST = {"anthropic-version": "2023-06-01"}  # Anthropic's shape of /v1/models/{id}


def sdk_http(sdk: Any, *, asynchronous: bool = False) -> Any:
    """An `http_client` for the openai or anthropic SDK: the SDK's own defaults, with TLS."""
    client = sdk.DefaultAsyncHttpxClient if asynchronous else sdk.DefaultHttpxClient
    return client(verify=TLS)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def write_config(path: Path, sections: Mapping[str, Mapping[str, Any]]) -> Path:
    """Write a codelace.toml with the given sections and keys."""
    lines: list[str] = []
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in keys.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def base_sections(tmp: Path, port: int | None = None) -> dict[str, dict[str, Any]]:
    """A config for a test: its own data dir and port, console mail, no Stripe."""
    from tests.pg_cluster import use_engine  # CODELACE_TEST_DATABASE=postgres: PostgreSQL

    return use_engine(
        {
            "server": {"host": "127.0.0.1", "port": port or free_port()},
            "database": {"path": str(tmp / "data" / "codelace.db")},
        }
    )


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a CLI or server child: no CODELACE_ leftovers from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CODELACE_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_cli(
    config: Path | None,
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run `codelace-box [--config X] ARGS` as a user would, a process of its own (forked from
    the worker's CLI fork server where it can be: tests/cli_fork.py); never raises on failure."""
    words = [*(["--config", str(config)] if config is not None else []), *args]
    child_env = cli_env(env)
    folder = cwd or (config.parent if config else None)
    server = None if os.environ.get("CODELACE_TEST_BINARY") else fork_server(cli_env())
    if server is not None and server.forkable(words, child_env):
        directory = str(folder) if folder is not None else os.getcwd()
        return server.run([*PROGRAM, *words], words, child_env, directory, timeout)
    return subprocess.run(
        [*PROGRAM, *words],
        capture_output=True,
        text=True,
        env=child_env,
        cwd=folder,
        timeout=timeout,
        check=False,
    )


class ServerProcess:
    """`codelace-box serve` as a child process, its log in a file."""

    # How to run codelace-box; the binary smoke test swaps in the executable.
    program: tuple[str, ...] = PROGRAM

    def __init__(self, config: Path, port: int, env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log_path = config.parent / f"server-{port}.log"
        self.env = env
        self.process: subprocess.Popen[bytes] | serve_fork.ForkedProcess | None = None

    def start(self, *extra_args: str, wait: float = HEALTHY_WAIT_SEC) -> ServerProcess:
        """Launch the server and wait until /healthz answers (a server that never does is
        killed, not left running behind the failed test)."""
        self.launch(*extra_args)
        try:
            self.wait_healthy(wait)
        except BaseException:
            self.kill()
            raise
        return self

    def kill(self) -> None:
        """End the process at once, if it still runs (e.g. after a failed start), and what it
        started (at once, rather than after their own graceful stop)."""
        if self.process is not None and self.process.poll() is None:
            kill_tree(self.process)

    def launch(self, *extra_args: str) -> ServerProcess:
        """Launch the server and return at once."""
        log = self.log_path.open("ab")
        words = ["--config", str(self.config), "serve", *extra_args]
        env = cli_env(self.env)
        fork = serve_fork.forkable(self.program, words, env, self.config)
        if fork is not None:  # a child of the preloaded fork server: tests/serve_fork.py
            command = [*self.program, *words]
            self.process = serve_fork.start(fork, command, env, self.config.parent, log)
        else:
            self.process = subprocess.Popen(
                [*self.program, *words],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.config.parent,
            )
        log.close()
        return self

    def wait_healthy(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        with httpx.Client(timeout=1, verify=TLS) as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited early:\n{self.log_text()}")
                try:
                    if client.get(self.base_url + "/healthz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        raise RuntimeError(f"server not healthy after {wait}s:\n{self.log_text()}")

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then wait; returns the exit code (kills only if it hangs)."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
            raise

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, pattern: str, count: int = 1, wait: float = 30) -> list[str]:
        """Wait until the log holds `count` distinct matches of the regex; returns them. The
        pause between reads grows from 10 to 100 ms (a long wait on a long log read it 100 times
        a second)."""
        deadline, pause = time.monotonic() + wait, growing_pauses(0.01, 0.1, 1.5)
        while len(found := sorted(set(re.findall(pattern, self.log_text())))) < count:
            assert time.monotonic() < deadline, f"no {pattern!r} x{count} in:\n{self.log_text()}"
            time.sleep(next(pause))
        return found


def descendants(pid: int) -> list[int]:
    """The processes `pid` started, and theirs, as /proc lists them now."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def kill_tree(process: subprocess.Popen[bytes] | serve_fork.ForkedProcess) -> None:
    """SIGKILL a process this test started and every process under it, then reap it."""
    below = descendants(process.pid)
    process.kill()
    for pid in below:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(10)


def eventually(check: Callable[[], object], what: str, timeout: float = 20) -> None:
    """Wait until `check()` is true, at most `timeout` seconds (then fail saying `what`); the
    pause between checks grows from 50 to 200 ms."""
    deadline, pause = time.monotonic() + timeout, growing_pauses(0.05, 0.2)
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(next(pause))


def growing_pauses(first: float, most: float, factor: float = 1.25) -> Iterator[float]:
    """The pauses of a polling wait: from `first`, each `factor` times the last, up to `most`
    (a long wait polls less often, where each poll costs the busy machine CPU)."""
    pause = first
    while True:
        yield pause
        pause = min(pause * factor, most)


def sqlite_rows(db_path: Path, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run SQL on a database file directly, as an operator with sqlite3 would."""
    import apsw

    connection = apsw.Connection(str(db_path))
    connection.set_busy_timeout(10_000)
    try:
        return list(connection.execute(statement, params))
    finally:
        connection.close()


_box_emails = itertools.count(1)


class BoxDriver:
    """Driving a running box from a test: its URL, the CLI on its config, fresh users with
    credit and a key, HTTP and SDK clients. Mixed into each suite's `Box` dataclass, which
    provides `server` and `config`."""

    server: ServerProcess
    config: Path
    email_prefix = "user"
    email_domain = "box.test"

    @property
    def url(self) -> str:
        return self.server.base_url

    def cli(self, *args: str) -> str:
        result = run_cli(self.config, *args)
        assert result.returncode == 0, f"{args}: {result.stderr}"
        return result.stdout

    def new_user(self, credit_usd: str = "10") -> tuple[str, str]:
        """A fresh account with credit and an API key: (email, key)."""
        email = f"{self.email_prefix}{next(_box_emails)}-{os.getpid()}@{self.email_domain}"
        self.cli("users", "create", email)
        if credit_usd != "0":
            self.cli("credit", email, credit_usd, "--reason", "test credit")
        key = self.cli("keys", "create", email).strip().splitlines()[0]
        self.remember_key(email, key)
        return email, key

    def remember_key(self, email: str, key: str) -> None:
        """Hook: a suite that tracks its users' keys records them here."""

    def until_reloaded(self) -> None:
        """Wait until the box has reloaded its catalog since a change the CLI just made to what
        is already served (an alias moved, a provider's allowed fields): a request sooner may
        still be routed by the snapshot of before (gateway/routing.py: up to half a second).
        On SQLite a lookup reloads a snapshot that old itself; on PostgreSQL a task reloads it
        every half second, its read late on a loaded machine: the SPEC's whole second."""
        time.sleep(CATALOG_SEEN_SEC if wanted_engine() == "postgres" else CATALOG_RELOAD_SEC)

    def until_served(self, *model_ids: str, workers: int = 1) -> None:
        """Wait until the box serves models (or aliases) the CLI just set: a catalog change is
        seen within a second, not at once (on PostgreSQL each worker reloads its catalog every
        half second); with several workers, until every one has reloaded since."""
        for model_id in model_ids:
            url = f"{self.url}/v1/models/{quote(model_id, safe='')}"
            get = partial(httpx.get, url, headers=ANTHROPIC_LIST, verify=TLS)
            seen_within(answers(get), time.monotonic(), CATALOG_SEEN_SEC, f"{model_id} served")
        if workers > 1:
            time.sleep(CATALOG_RELOAD_SEC)

    def http(self, key: str | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, verify=TLS)

    def sdk(self, key: str, **options: Any) -> Any:
        import openai

        return openai.OpenAI(
            base_url=self.url + "/v1", api_key=key, max_retries=0, http_client=sdk_http(openai),
            **options,
        )  # fmt: skip


def usd_nanos(*counts_at_prices: tuple[int, str]) -> int:
    """Exact cost of (tokens, USD per 1M) pairs, rounded up once, computed independently."""
    usd = sum(
        (Fraction(price) * count / 1_000_000 for count, price in counts_at_prices), Fraction()
    )
    nanos = usd * 1_000_000_000
    return -(-nanos.numerator // nanos.denominator)


class MetricsView:
    """Reading a box's /metrics. Mixed into a suite's box dataclass after BoxDriver, whose
    `url` it reads."""

    @property
    def url(self) -> str:
        raise NotImplementedError

    def open_holds(self) -> float:
        """The holds open now, as /metrics counts them (every worker's)."""
        text = httpx.get(self.url + "/metrics", verify=TLS).text
        found = re.search(r"^codelace_open_holds (\S+)$", text, re.MULTILINE)
        assert found, text
        return float(found.group(1))


class LedgerView:
    """Reading a box's database read-only, as the truth of what was charged: its SQLite file
    (`db_path`), or with CODELACE_TEST_DATABASE=postgres the PostgreSQL database its config
    names. Mixed into a suite's box dataclass, which provides `db_path` and `config`."""

    db_path: Path
    config: Path

    def balance_nanos(self, email: str) -> tuple[int, int]:
        """(balance, held) of a user, straight from the database."""
        [row] = self._rows('SELECT balance_nanos, held_nanos FROM "user" WHERE email = ?', email)
        return int(row["balance_nanos"]), int(row["held_nanos"])

    def usage_rows(self, email: str) -> list[dict[str, Any]]:
        """The user's usage records, oldest first."""
        return self._rows(
            'SELECT r.* FROM usage_record r JOIN "user" u ON u.id = r.user_id '
            "WHERE u.email = ? ORDER BY r.id",
            email,
        )

    def _rows(self, statement: str, *params: Any) -> list[dict[str, Any]]:
        from tests.pg_cluster import query_config_dicts, rows_as_text

        if rows_as_text(self.config):  # PostgreSQL: the database its config names
            return query_config_dicts(self.config, statement, params)
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10) as db:
            db.row_factory = sqlite3.Row
            return [dict(row) for row in db.execute(statement, params).fetchall()]


UUID4_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def is_uuid4(value: object) -> bool:
    """True for a public id as the box shows it: a UUID4 string, lowercase and hyphenated."""
    return isinstance(value, str) and UUID4_TEXT.fullmatch(value) is not None


def migrate_below(db: Any, version: int) -> None:
    """`db` at the schema just before migration `version`, recorded as `migrate` leaves it: the
    setup of a test that a migration keeps or converts what an older database holds."""
    from codelace_box.db.core import write_transaction
    from codelace_box.db.migrate import schema_target
    from codelace_box.db.migrations import MIGRATIONS
    from codelace_box.db.models import SchemaMigration

    with write_transaction():
        db.create_tables([SchemaMigration])
        for number, module in MIGRATIONS:
            if number < version:
                module.apply(schema_target(db))
                SchemaMigration.create(version=number, name=module.NAME)


AS_NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")


def as_nobody(config: Path, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """A command run by the service's user (nobody, as a box given its own user runs), to its
    end, its output captured (root only)."""
    return subprocess.run(
        [*AS_NOBODY, *PROGRAM, "--config", str(config), *args],
        capture_output=True, text=True, timeout=30, env=cli_env({"HOME": str(home)}),
        check=False,
    )  # fmt: skip
