"""The benchmark on PostgreSQL (`python -m bench.run --database postgres [--boxes 2]`): a
throwaway cluster for the run, and several boxes on its one database.

The cluster (bench/pgcluster.py) keeps PostgreSQL's durability defaults (fsync on): the box
sets `synchronous_commit` itself (off for its sessions, on for a credit), as it would on an
operator's server. `--pg-stats` loads pg_stat_statements and prints the statements that took
the server's time. With `--boxes 2` a second `serve` on another port joins the same database
after the one-box scenarios, and requests/s at 64 concurrent is measured alternately on the
first box alone and spread over both (bench/load.py takes several URLs), `--rounds` times each.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.pgcluster import PgCluster, missing_reason
from bench.procs import cpu_seconds, free_port, tree_pids

BENCH_SETTINGS = {"fsync": "on", "full_page_writes": "on", "shared_buffers": "128MB"}
STATS_SETTINGS = {"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.max": "500"}


def start_cluster(stats: bool) -> tuple[PgCluster, str]:
    """A running cluster and the URL of a fresh database on it (stops the bench if
    PostgreSQL cannot run here)."""
    reason = missing_reason()
    if reason is not None:
        raise SystemExit(f"--database postgres: {reason}")
    cluster = PgCluster(free_port(), BENCH_SETTINGS | (STATS_SETTINGS if stats else {}))
    cluster.start()
    url = cluster.new_database()
    if stats:
        cluster.sql("CREATE EXTENSION pg_stat_statements", url.rsplit("/", 1)[1])
    return cluster, url


def box_config(folder: Path, port: int, url: str | None, secret: str) -> Path:
    """A box's config file: its port, its database, and the shared secret on PostgreSQL."""
    folder.mkdir(parents=True, exist_ok=True)
    server = f'[server]\nhost = "127.0.0.1"\nport = {port}\n'
    if url is None:
        database = f'[database]\npath = "{folder / "data" / "codelace.db"}"\n'
    else:
        server += f'secret_key = "{secret}"\n'
        database = f'[database]\nurl = "{url}"\n'
    config = folder / "codelace.toml"
    config.write_text(server + database)
    return config


def new_secret() -> str:
    """The server secret the boxes of one bench run share."""
    return secrets.token_urlsafe(32)


def postgres_pids(cluster: PgCluster) -> list[int]:
    """The cluster's server processes (the postmaster and its backends)."""
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    return tree_pids(postmaster)


def database_cpu(cluster: PgCluster | None) -> Callable[[], float]:
    """A reader of the database server's CPU seconds so far (0 without a cluster)."""
    if cluster is None:
        return lambda: 0.0
    return lambda: cpu_seconds(postgres_pids(cluster))


def top_statements(cluster: PgCluster, url: str, limit: int = 12) -> list[str]:
    """pg_stat_statements' statements by total time: calls, total and mean ms, rows, text."""
    sql = (
        "SELECT calls, round(total_exec_time::numeric, 1), round(mean_exec_time::numeric, 4), "
        f"rows, left(query, 90) FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT {limit}"
    )
    return [" ".join(row) for row in cluster.sql(sql, url.rsplit("/", 1)[1])]


def boxes_rounds(
    urls: list[str],
    load: Callable[[list[str]], dict[str, Any]],
    rounds: int,
    cpu: Callable[[], float],
) -> dict[str, Any]:
    """Requests/s at 64 concurrent on the first box alone, then over every box, alternately
    `rounds` times (a shared machine drifts: alternating shares the drift); the database
    server's CPU ms per request of each run."""
    out: dict[str, Any] = {"one_box": [], "all_boxes": []}
    for _ in range(rounds):
        for name, targets in (("one_box", urls[:1]), ("all_boxes", urls)):
            before = cpu()
            figures = load(targets)
            figures["db_cpu_ms_per_request"] = round(
                (cpu() - before) * 1000 / max(figures["count"], 1), 3
            )
            out[name].append(figures)
    return out


def stop_all(processes: list[subprocess.Popen[bytes] | None]) -> None:
    """SIGTERM what is still running, and wait."""
    for process in processes:
        if process is not None and process.poll() is None:
            process.terminate()
            process.wait(20)
