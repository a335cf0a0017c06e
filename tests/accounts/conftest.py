"""Fixtures of the accounts suite: a recording SMTP server, module-scoped box servers, and a
client that signs in the way a person does (ask for a code, read the mail, verify)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.smtp_server import RecordingSmtpServer
from tests.pg_cluster import secret_for, stored_bytes
from tests.support import TLS, ServerProcess, base_sections, free_port, run_cli, write_config

ServerFactory = Callable[..., ServerProcess]


@pytest.fixture(scope="module")
def smtp() -> Iterator[RecordingSmtpServer]:
    """A plain (no TLS, no login) SMTP server on loopback for this module."""
    server = RecordingSmtpServer().start()
    yield server
    server.stop()


def smtp_sections(smtp_server: RecordingSmtpServer) -> dict[str, Any]:
    """The [email] section that sends mail to the recording server."""
    return {
        "backend": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_server.port,
        "smtp_starttls": False,
        "from_address": "codelace@box.test",
    }


@pytest.fixture(scope="module")
def box_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Start `codelace-box serve` processes for this module; all stop at its end.

    `data` names a data directory: servers given the same one share the database.
    """
    started: list[ServerProcess] = []
    shared_urls: dict[str, str] = {}

    def factory(
        data: str = "", env: dict[str, str] | None = None, **sections: dict[str, Any]
    ) -> ServerProcess:
        folder = tmp_path_factory.mktemp("box")
        merged = base_sections(folder, free_port())
        if data:
            merged["database"]["path"] = str(tmp_path_factory.getbasetemp() / data / "box.db")
            if "url" in merged["database"]:  # PostgreSQL: one database per data name
                url = shared_urls.setdefault(data, merged["database"]["url"])
                merged["database"]["url"] = url
                merged["server"]["secret_key"] = secret_for(url)
        for name, keys in sections.items():
            merged.setdefault(name, {}).update(keys)
        config = write_config(folder / "codelace.toml", merged)
        server = ServerProcess(config, int(merged["server"]["port"]), env=env).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


class BoxClient:
    """HTTP to one box, plus sign-in through the recording SMTP server."""

    def __init__(self, server: ServerProcess, smtp_server: RecordingSmtpServer | None) -> None:
        self.server = server
        self.smtp = smtp_server
        self.http = httpx.Client(base_url=server.base_url, timeout=30, verify=TLS)
        self.keys_seen: list[str] = []  # every full API key the box handed out to us

    def request_code(self, email: str) -> httpx.Response:
        return self.http.post("/api/v1/auth/otp/request", json={"email": email})

    def verify(self, email: str, code: object) -> httpx.Response:
        response = self.http.post("/api/v1/auth/otp/verify", json={"email": email, "code": code})
        if response.status_code == 200:
            self.keys_seen.append(response.json()["api_key"])
        return response

    def create_key(self, key: str, name: object) -> httpx.Response:
        response = self.http.post(
            "/api/v1/auth/key", json={"name": name}, headers={"authorization": f"Bearer {key}"}
        )
        if response.status_code == 200:
            self.keys_seen.append(response.json()["full_key"])
        return response

    def mailed_code(self, email: str) -> str:
        """Ask for a code and read it from the mail that arrives for it."""
        assert self.smtp is not None
        address = email.strip().lower()  # where the box sends it
        before = len(self.smtp.messages_to(address))
        response = self.request_code(email)
        assert response.status_code == 200, response.text
        assert response.json()["email"] == address
        return self.smtp.wait_for(address, count=before + 1).code

    def sign_in(self, email: str) -> dict[str, Any]:
        """The verify answer of a complete sign-in."""
        response = self.verify(email, self.mailed_code(email))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def call(self, method: str, path: str, key: str, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}"}
        return self.http.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, key: str) -> httpx.Response:
        return self.call("GET", path, key)

    def close(self) -> None:
        self.http.close()


def cli(server: ServerProcess, *args: str) -> str:
    """Run the admin CLI on a server's config; its stdout (fails the test on an error)."""
    result = run_cli(server.config, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def database_path(server: ServerProcess) -> Path:
    """The SQLite file of a server started by box_factory."""
    import tomllib

    return Path(tomllib.loads(server.config.read_text())["database"]["path"])


def secret_pattern(secret: str) -> re.Pattern[bytes]:
    """How to find a secret in raw bytes. A 6-digit code must stand alone, apart from letters
    and digits: the same digits as the microseconds of a stored timestamp ('.123456'), inside a
    longer number, or inside a hash's or an id's hex ('a894930f', where a SQLite file holds
    thousands) are not it. Every stored field is scanned on its own too (stored_bytes), so a
    code stored in clear beside another field's letters is found there."""
    escaped = re.escape(secret.encode())
    if secret.isdigit():
        return re.compile(rb"(?<![0-9A-Za-z.])" + escaped + rb"(?![0-9A-Za-z])")
    return re.compile(escaped)


def assert_nothing_secret_stored(server: ServerProcess, secrets: list[str], marker: str) -> None:
    """No secret in the database (its rows, and a SQLite file and its WAL), or the server
    log; `marker` (e.g. an email the database holds) proves the scan reads the right bytes."""
    stored = stored_bytes(server.config)
    log = server.log_text()
    assert marker.encode() in stored
    assert secrets, "nothing to look for"
    for secret in secrets:
        assert not secret_pattern(secret).search(stored), "a secret is stored in clear"
    assert not secrets_in_log(log, secrets, server_pids(server, log)), "a secret reached the log"


def server_pids(server: ServerProcess, log: str) -> set[int]:
    """The server's processes: its own, and each worker its log says Sanic started."""
    pids = {int(pid) for pid in re.findall(r"Starting worker \[(\d+)\]", log)}
    return pids | ({server.process.pid} if server.process is not None else set())


def secrets_in_log(log: str, secrets: list[str], pids: set[int]) -> list[str]:
    """The secrets a server log holds in clear, the `[<pid>]` tokens of the server's processes
    (`pids`) set aside first: Sanic's and the supervisor's lines name a process so, and a
    6-digit PID (on a machine that has them) is no sign-in code. A code anywhere else, or
    bracketed where no such PID is, is still found."""
    ours = {str(pid) for pid in pids}
    text = re.sub(r"\[(\d+)\]", lambda n: "[pid]" if n[1] in ours else n[0], log).encode()
    return [secret for secret in secrets if secret_pattern(secret).search(text)]


CONSOLE_CODE_RE = re.compile(r"sign-in code for (\S+): (\d{6})")


def not_the(code: str, step: int = 1) -> str:
    """A wrong code: another than `code` (a fixed one is the random right one, 1 in 10**6)."""
    return f"{(int(code) + step) % 1_000_000:06d}"


def console_code(server: ServerProcess, email: str, timeout: float = 5) -> str:
    """The newest code the console mail backend printed to a server's log for `email`."""
    deadline = time.monotonic() + timeout
    while True:
        found = [c for e, c in CONSOLE_CODE_RE.findall(server.log_text()) if e == email]
        if found:
            return found[-1]
        assert time.monotonic() < deadline, f"no code for {email} in the log"
        time.sleep(0.05)
