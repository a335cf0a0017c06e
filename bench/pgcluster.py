"""A throwaway PostgreSQL cluster (initdb + pg_ctl on a private port and socket folder, fsync
off), for the benchmark and the tests (tests/pg_cluster.py wraps it in their fixtures).

initdb refuses root: as root the cluster runs as the `postgres` user (`runuser`). Nothing here
imports pytest; `missing_reason()` says why no cluster can start on this machine.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
RUN_AS = "postgres"
# Throwaway data: no fsync, no full pages; room for many boxes' connections.
DEFAULT_SETTINGS = {
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
}


def binary(name: str) -> str | None:
    """The path of a PostgreSQL server program (the newest installed), or None."""
    for folder in PG_BIN_DIRS:
        if (folder / name).is_file():
            return str(folder / name)
    return shutil.which(name)


def missing_reason() -> str | None:
    """Why no cluster can start here, or None."""
    if binary("initdb") is None or binary("pg_ctl") is None:
        return "PostgreSQL server binaries not installed (apt-get install -y postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(RUN_AS)
        except KeyError:
            return "no `postgres` user to run the cluster as"
    return None


class PgCluster:
    """One cluster on `port`; `start()` it, `new_database()` hands out empty databases by URL,
    `stop()` removes it. `settings`: server settings (-c name=value) over DEFAULT_SETTINGS."""

    def __init__(self, port: int, settings: dict[str, str] | None = None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="codelace-pg-"))
        self.port = port
        self.settings = DEFAULT_SETTINGS | (settings or {})
        self._names = itertools.count(1)
        self._as_root = os.geteuid() == 0
        if self._as_root:
            user = pwd.getpwnam(RUN_AS)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self.data = self.root / "data"
        self.log = self.root / "server.log"

    def _run(self, *args: str) -> None:
        command = [*(["runuser", "-u", RUN_AS, "--"] if self._as_root else []), *args]
        subprocess.run(command, check=True, capture_output=True, timeout=120, cwd=self.root)

    def start(self) -> PgCluster:
        """initdb (trust on loopback) and start the server; returns self."""
        initdb, pg_ctl = binary("initdb"), binary("pg_ctl")
        assert initdb and pg_ctl
        self._run(initdb, "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        settings = " ".join(f"-c {name}={value}" for name, value in self.settings.items())
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 {settings}"
        self._run(pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        """The URL of one database of this cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> list[list[str]]:
        """Run one statement with psql (the benchmark imports no driver: db/ alone does); its
        rows, each a list of texts."""
        psql = binary("psql")
        assert psql
        command = [psql, "-h", str(self.root), "-p", str(self.port), "-U", "postgres", "-d",
                   database, "-X", "-q", "-A", "-t", "-F", "\t", "-c", statement]  # fmt: skip
        command = [*(["runuser", "-u", RUN_AS, "--"] if self._as_root else []), *command]
        done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=60)
        return [line.split("\t") for line in done.stdout.splitlines() if line]

    def new_database(self) -> str:
        """Create an empty database; its URL."""
        name = f"box_{os.getpid()}_{next(self._names)}"
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast) and remove its files."""
        pg_ctl = binary("pg_ctl")
        if pg_ctl and (self.data / "postmaster.pid").exists():
            self._run(pg_ctl, "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
