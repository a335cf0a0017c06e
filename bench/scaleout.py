"""`make bench-scaleout`: requests/s at 64 concurrent on SQLite and on PostgreSQL, one box and
several, interleaved in one run.

A shared machine drifts by more than the differences measured here, so the runs alternate:
each round runs the same bounded load (bench.load, 64 connections, the fake upstream) against
a box on SQLite, one box on a throwaway PostgreSQL cluster (bench/boxes.py; the box sets
`synchronous_commit` itself), and `--boxes` boxes on that one database, the load spread over
them. It prints every run, the median of each setup, the ratios the SPEC asks about
(PostgreSQL / SQLite on one box, all boxes / one box on PostgreSQL), the database server's CPU
per request, and the machine's load. Every request is checked: errors are counted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.boxes import box_config, database_cpu, new_secret, start_cluster, stop_all
from bench.procs import busy_share, cpu_seconds, free_port, machine_ticks, tree_pids
from bench.run import PYTHON, load, setup_box, start_server

CHAT = "http://127.0.0.1:{port}/v1/chat/completions"


def start_boxes(folder: Path, up_port: int, boxes: int, url: str) -> dict[str, Any]:
    """A SQLite box, and `boxes` boxes on the PostgreSQL `url`: their URLs, the key of each
    database, the processes."""
    secret = new_secret()
    ports = [free_port() for _ in range(boxes + 1)]
    config, lite_key = setup_box(folder / "sqlite", up_port, ports[0], None, secret)
    servers = [start_server(config, ports[0], 1)[0]]
    config, pg_key = setup_box(folder / "pg1", up_port, ports[1], url, secret)
    servers.append(start_server(config, ports[1], 1)[0])
    for number, port in enumerate(ports[2:], start=2):
        config = box_config(folder / f"pg{number}", port, url, secret)
        servers.append(start_server(config, port, 1)[0])
    urls = [CHAT.format(port=port) for port in ports]
    return {"sqlite": urls[0], "pg": urls[1:], "keys": (lite_key, pg_key), "servers": servers}


def one_round(args: argparse.Namespace, setup: dict[str, Any], cpu: Any) -> dict[str, Any]:
    """One run of each setup, in turn; each with the machine's busy share during it."""
    lite_key, pg_key = setup["keys"]
    runs = {
        "sqlite": ([setup["sqlite"]], lite_key),
        "postgres_one_box": (setup["pg"][:1], pg_key),
        "postgres_all_boxes": (setup["pg"], pg_key),
    }
    servers = setup["servers"]
    trees = {
        "sqlite": servers[:1],
        "postgres_one_box": servers[1:2],
        "postgres_all_boxes": servers[1:],
    }
    out: dict[str, Any] = {}
    for name, (urls, key) in runs.items():
        pids = [pid for server in trees[name] for pid in tree_pids(server.pid)]
        ticks, db_before, box_before = machine_ticks(), cpu(), cpu_seconds(pids)
        figures = load(urls, key, args.concurrency, args.requests)
        figures["busy"] = round(busy_share(ticks, machine_ticks()), 2)
        count = max(figures["count"], 1)
        figures["box_cpu_ms_per_request"] = round(
            (cpu_seconds(pids) - box_before) * 1000 / count, 3
        )
        db_ms = (cpu() - db_before) * 1000 / count
        figures["db_cpu_ms_per_request"] = round(db_ms, 3) if name != "sqlite" else 0.0
        out[name] = figures
    return out


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of each setup's rate, the two ratios, errors."""
    rate = {
        name: round(statistics.median(r[name]["rate"] for r in rounds), 1) for name in rounds[0]
    }
    return {
        "sqlite_per_sec_c64": rate["sqlite"],
        "postgres_one_box_per_sec_c64": rate["postgres_one_box"],
        "postgres_all_boxes_per_sec_c64": rate["postgres_all_boxes"],
        "postgres_vs_sqlite": round(rate["postgres_one_box"] / rate["sqlite"], 2),
        "all_boxes_vs_one_box": round(rate["postgres_all_boxes"] / rate["postgres_one_box"], 2),
        "db_cpu_ms_per_request": statistics.median(
            r["postgres_one_box"]["db_cpu_ms_per_request"] for r in rounds
        ),
        "sqlite_box_cpu_ms_per_request": statistics.median(
            r["sqlite"]["box_cpu_ms_per_request"] for r in rounds
        ),
        "postgres_box_cpu_ms_per_request": statistics.median(
            r["postgres_one_box"]["box_cpu_ms_per_request"] for r in rounds
        ),
        "errors": sum(r[name]["errors"] for r in rounds for name in r),
        "load_average": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="per run, at 64")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--boxes", type=int, default=2, help="boxes on the one PostgreSQL")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="codelace-scaleout-"))
    up_port = free_port()
    upstream = subprocess.Popen([PYTHON, "-m", "bench.upstream", "--port", str(up_port)])
    cluster, servers = None, []
    try:
        cluster, url = start_cluster(stats=False)
        setup = start_boxes(folder, up_port, args.boxes, url)
        servers = setup["servers"]
        for urls, key in (([setup["sqlite"]], setup["keys"][0]), (setup["pg"], setup["keys"][1])):
            load(urls, key, 8, 400)  # warm up
        rounds = []
        for number in range(1, args.rounds + 1):
            rounds.append(one_round(args, setup, database_cpu(cluster)))
            print(f"round {number}:", {k: (v["rate"], v["busy"]) for k, v in rounds[-1].items()})
        figures = summary(rounds)
        for name, value in figures.items():
            print(f"{name:32} {value:>10}")
        if args.json:
            args.json.write_text(json.dumps(figures | {"rounds": rounds}, indent=2))
    finally:
        stop_all([*servers, upstream])
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
