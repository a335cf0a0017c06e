"""The periodic jobs of a serve while its PostgreSQL server is down for a while (a restart, a
failover): each job's failure is one line, not a traceback at every tick, and its end one more.
A cluster of its own: the test stops and starts it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.pgcluster import binary
from tests import pg_cluster
from tests.pg_cluster import SHARED_SECRET, need_postgres
from tests.support import ServerProcess, free_port, run_cli, write_config

pytestmark = pytest.mark.timeout(120)
FAST = {"CODELACE_UPKEEP_TICK_SEC": "0.3", "CODELACE_HOLD_SWEEP_SEC": "0.3"}
JOBS = (
    "the sweep of leftover holds",
    "probing the flagged provider keys",
    "the background upkeep",
)


def _pg_ctl(cluster: pg_cluster.PgCluster, *args: str) -> None:
    pg_ctl = binary("pg_ctl")
    assert pg_ctl
    cluster._run(pg_ctl, "-D", str(cluster.data), *args)


def test_a_database_down_for_a_while_is_one_line_a_job_not_a_traceback_a_tick(
    tmp_path: Path,
) -> None:
    """PostgreSQL down for 6 s under ticks of 0.3 s: the hold sweep, the key probes and the
    upkeep each logged 'failed' with a traceback at every tick (120 tracebacks in 10 s here;
    at the default ticks, one a job every 30 s: hundreds an hour of an outage)."""
    need_postgres()
    cluster = pg_cluster.TestCluster(free_port()).start()
    try:
        port = free_port()
        config = write_config(tmp_path / "codelace.toml", {
            "server": {"port": port, "secret_key": SHARED_SECRET},
            "database": {"url": cluster.new_database()},
            "gateway": {"key_probe_sec": 0.3},
        })  # fmt: skip
        assert run_cli(config, "migrate").returncode == 0
        server = ServerProcess(config, port, env=FAST).start()
        try:
            time.sleep(1)
            _pg_ctl(cluster, "-m", "fast", "-w", "stop")
            time.sleep(6)
            settings = " ".join(f"-c {name}={value}" for name, value in cluster.settings.items())
            options = f"-p {cluster.port} -k {cluster.root} -c listen_addresses=127.0.0.1"
            _pg_ctl(cluster, "-o", f"{options} {settings}", "-l", str(cluster.log), "-w", "start")
            for job in JOBS:
                server.wait_for_log(f"{job} works again", wait=20)
        finally:
            assert server.stop() == 0
    finally:
        cluster.stop()
    log = server.log_text()
    assert "Traceback" not in log, log[-3000:]
    for job in JOBS:
        assert log.count(f"{job} failed") == 1, (job, log.count(f"{job} failed"))
