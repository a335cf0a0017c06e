"""`make bench`: the gateway benchmark, with auth, admission and settlement on.

It starts the fast fake upstream (bench.upstream) and a real `codelace-box serve` on a fresh
data directory set up with the real CLI, then runs the bounded load generator (bench.load, its
own process) for: latency at 1 concurrent, direct to the upstream and through the box (the
difference is what the box adds); requests/s at 64 concurrent; streams/s (16 chunks) at 64
concurrent with time to first event; and /v1/messages to an anthropic provider (the
pass-through), and /v1/responses to the chat model (translated both ways), each plain and
streamed at 64, whose server CPU per call should stay within 25% of the chat completions
figures. Server CPU per request comes from /proc (utime+stime of
the server and its workers), memory from VmRSS, start time from spawn to the first /healthz.
Every request is checked to have been metered (one usage row each). Figures are printed, and
written as JSON with --json PATH. The machine's other load is printed too: on a shared machine
it moves every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.boxes import (
    box_config,
    boxes_rounds,
    database_cpu,
    new_secret,
    start_cluster,
    stop_all,
    top_statements,
)
from bench.procs import (
    busy_share,
    cpu_seconds,
    free_port,
    machine_ticks,
    rss_mb,
    tree_pids,
    wait_healthy,
)

PYTHON = sys.executable
MODEL = "bench/gpt"
CLAUDE = "bench-anth/claude"  # the same fake upstream, through /v1/messages


def cli(config: Path, *args: str) -> str:
    """Run the real CLI on the bench config; stops the bench on failure."""
    command = [PYTHON, "-m", "codelace_box", "--config", str(config), *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed: {result.stderr.strip()}")
    return result.stdout


def setup_box(
    folder: Path, upstream_port: int, port: int, url: str | None = None, secret: str | None = None
) -> tuple[Path, str]:
    """A config (SQLite under `folder`, or the PostgreSQL `url`; the boxes of one run share
    `secret`), a provider, a priced model, a user with credit and an API key."""
    config = box_config(folder, port, url, secret or new_secret())
    base = f"http://127.0.0.1:{upstream_port}/v1"
    cli(config, "providers", "add", "bench", "--kind", "openai", "--base-url", base,
        "--key", "sk-bench-key-0001")  # fmt: skip
    cli(config, "models", "set", MODEL, "--input-per-1m", "1", "--output-per-1m", "2",
        "--upstream-model", "gpt-bench")  # fmt: skip
    cli(config, "providers", "add", "bench-anth", "--kind", "anthropic", "--base-url",
        f"http://127.0.0.1:{upstream_port}", "--key", "sk-ant-bench-0001")  # fmt: skip
    cli(config, "models", "set", CLAUDE, "--input-per-1m", "1", "--output-per-1m", "2",
        "--upstream-model", "claude-bench")  # fmt: skip
    cli(config, "users", "create", "bench@bench.test")
    cli(config, "credit", "bench@bench.test", "1000000", "--reason", "benchmark credit")
    key = cli(config, "keys", "create", "bench@bench.test").strip()
    return config, key


def load(url: str | list[str], key: str, concurrency: int, requests: int, stream: bool = False,
         seconds: float = 30.0, model: str = MODEL) -> dict[str, Any]:  # fmt: skip
    """One bounded run of the load generator (its own process); several URLs: spread."""
    urls = [url] if isinstance(url, str) else url
    command = [PYTHON, "-m", "bench.load", *(a for u in urls for a in ("--url", u)), "--key", key,
               "--model", model, "--concurrency", str(concurrency), "--requests", str(requests),
               "--max-seconds", str(seconds)] + (["--stream"] if stream else [])  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    if result.returncode != 0:
        raise SystemExit(f"load generator failed: {result.stderr.strip()}")
    return dict(json.loads(result.stdout))


def measured(server_pid: int, run: Any) -> tuple[dict[str, Any], float, float]:
    """Run a load; returns its figures, the server CPU seconds it cost and the machine's busy
    share during it (all processes, ours included)."""
    pids = tree_pids(server_pid)
    cpu_before, ticks_before = cpu_seconds(pids), machine_ticks()
    figures = run()
    return figures, cpu_seconds(pids) - cpu_before, busy_share(ticks_before, machine_ticks())


def start_server(config: Path, port: int, workers: int) -> tuple[subprocess.Popen[bytes], float]:
    log = (config.parent / "server.log").open("wb")
    began = time.perf_counter()
    process = subprocess.Popen(
        [PYTHON, "-m", "codelace_box", "--config", str(config), "serve", "--workers", str(workers)],
        stdout=log, stderr=subprocess.STDOUT, env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    wait_healthy(port, process, 30)
    return process, time.perf_counter() - began


def scenarios(args: argparse.Namespace, pid: int, port: int, up: int, key: str) -> dict[str, Any]:
    box = f"http://127.0.0.1:{port}/v1/chat/completions"
    direct = f"http://127.0.0.1:{up}/v1/chat/completions"
    out: dict[str, Any] = {"warmup": load(box, key, 8, 400)}
    out["direct_c1"] = load(direct, key, 1, args.latency_requests)
    out["box_c1"], _, _ = measured(pid, lambda: load(box, key, 1, args.latency_requests))
    run64 = lambda: load(box, key, args.concurrency, args.requests)  # noqa: E731
    out["box_c64"], out["cpu_c64"], out["busy_c64"] = measured(pid, run64)
    runs = lambda: load(box, key, args.concurrency, args.stream_requests, stream=True)  # noqa: E731
    out["stream_c64"], out["cpu_stream"], out["busy_stream"] = measured(pid, runs)
    messages_scenarios(args, pid, port, key, out)
    responses_scenarios(args, pid, port, key, out)
    out["rss_mb"] = sum(rss_mb(p) for p in tree_pids(pid))
    return out


def messages_scenarios(
    args: argparse.Namespace, pid: int, port: int, key: str, out: dict[str, Any]
) -> None:
    """/v1/messages to an anthropic provider (the pass-through), plain and streamed, at 64."""
    url = f"http://127.0.0.1:{port}/v1/messages"
    plain = lambda: load(url, key, args.concurrency, args.requests, model=CLAUDE)  # noqa: E731
    out["messages_c64"], out["cpu_messages"], _ = measured(pid, plain)
    streamed = lambda: load(url, key, args.concurrency, args.stream_requests, stream=True,  # noqa: E731
                            model=CLAUDE)  # fmt: skip
    out["messages_stream_c64"], out["cpu_messages_stream"], _ = measured(pid, streamed)


def responses_scenarios(
    args: argparse.Namespace, pid: int, port: int, key: str, out: dict[str, Any]
) -> None:
    """/v1/responses to the chat model (translated both ways), plain and streamed, at 64."""
    url = f"http://127.0.0.1:{port}/v1/responses"
    plain = lambda: load(url, key, args.concurrency, args.requests)  # noqa: E731
    out["responses_c64"], out["cpu_responses"], _ = measured(pid, plain)
    streamed = lambda: load(url, key, args.concurrency, args.stream_requests, stream=True)  # noqa: E731
    out["responses_stream_c64"], out["cpu_responses_stream"], _ = measured(pid, streamed)


def per_call_ms(cpu_sec: float, run: dict[str, Any]) -> float:
    return round(cpu_sec * 1000 / max(run["count"], 1), 3)


def report(out: dict[str, Any], start_sec: float, metered: int, answered: int) -> dict[str, Any]:
    c64, streams = out["box_c64"], out["stream_c64"]
    figures = {
        "requests_per_sec_c64": c64["rate"],
        "added_p50_ms_c1": round(out["box_c1"]["p50_ms"] - out["direct_c1"]["p50_ms"], 3),
        "added_p99_ms_c1": round(out["box_c1"]["p99_ms"] - out["direct_c1"]["p99_ms"], 3),
        "direct_p50_ms_c1": out["direct_c1"]["p50_ms"],
        "box_p50_ms_c1": out["box_c1"]["p50_ms"],
        "p50_ms_c64": c64["p50_ms"],
        "p99_ms_c64": c64["p99_ms"],
        "server_cpu_ms_per_request": round(out["cpu_c64"] * 1000 / max(c64["count"], 1), 3),
        "streams_per_sec_c64": streams["rate"],
        "stream_ttfb_p50_ms": streams["ttfb_p50_ms"],
        "stream_ttfb_p99_ms": streams["ttfb_p99_ms"],
        "server_cpu_ms_per_stream": round(out["cpu_stream"] * 1000 / max(streams["count"], 1), 3),
        "messages_per_sec_c64": out["messages_c64"]["rate"],
        "messages_cpu_ms_per_request": per_call_ms(out["cpu_messages"], out["messages_c64"]),
        "messages_cpu_ms_per_stream": per_call_ms(
            out["cpu_messages_stream"], out["messages_stream_c64"]
        ),
        "responses_per_sec_c64": out["responses_c64"]["rate"],
        "responses_cpu_ms_per_request": per_call_ms(out["cpu_responses"], out["responses_c64"]),
        "responses_cpu_ms_per_stream": per_call_ms(
            out["cpu_responses_stream"], out["responses_stream_c64"]
        ),
        "start_sec": round(start_sec, 3),
        "rss_mb": round(out["rss_mb"], 1),
        "errors": c64["errors"]
        + streams["errors"]
        + out["box_c1"]["errors"]
        + out["messages_c64"]["errors"]
        + out["messages_stream_c64"]["errors"]
        + out["responses_c64"]["errors"]
        + out["responses_stream_c64"]["errors"],
        "metered_rows": metered,
        "answered_ok": answered,
        "machine_busy_c64": round(out["busy_c64"], 2),
        "machine_busy_streams": round(out["busy_stream"], 2),
        "load_average": round(os.getloadavg()[0], 2),
    }
    return figures


TARGETS = {
    "requests_per_sec_c64": (">=", 1600),
    "added_p50_ms_c1": ("<=", 1.0),
    "server_cpu_ms_per_request": ("<=", 0.6),
    "streams_per_sec_c64": (">=", 600),
    "start_sec": ("<", 1.0),
    "rss_mb": ("<", 100),
}


def print_figures(figures: dict[str, Any]) -> None:
    print(f"{'figure':32} {'value':>10}  target")
    for name, value in figures.items():
        target = TARGETS.get(name)
        shown = f"{target[0]} {target[1]}" if target else ""
        if target:
            met = value >= target[1] if target[0] == ">=" else value <= target[1]
            if target[0] == "<":
                met = value < target[1]
            shown += "  ok" if met else "  MISSED"
        print(f"{name:32} {value:>10}  {shown}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000, help="non-streaming, at 64")
    parser.add_argument("--stream-requests", type=int, default=3000, help="streams, at 64")
    parser.add_argument("--latency-requests", type=int, default=500, help="each, at 1")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite",
                        help="postgres: a throwaway cluster (bench/boxes.py)")  # fmt: skip
    parser.add_argument("--boxes", type=int, default=1,
                        help="postgres: boxes on the one database (2: one vs two)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=2, help="--boxes: one vs all, alternately")
    parser.add_argument("--pg-stats", action="store_true", help="print pg_stat_statements' top")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    args = parser.parse_args()
    if args.boxes > 1 and args.database != "postgres":
        parser.error("--boxes needs --database postgres (boxes share one database)")
    return args


def main() -> None:
    args = parse_args()
    folder = Path(tempfile.mkdtemp(prefix="codelace-bench-"))
    up_port = free_port()
    upstream = subprocess.Popen([PYTHON, "-m", "bench.upstream", "--port", str(up_port)])
    cluster, url, servers = None, None, []
    try:
        if args.database == "postgres":
            cluster, url = start_cluster(args.pg_stats)
        secret, ports = new_secret(), [free_port() for _ in range(args.boxes)]
        config, key = setup_box(folder / "box1", up_port, ports[0], url, secret)
        server, start_sec = start_server(config, ports[0], args.workers)
        servers.append(server)
        out = scenarios(args, server.pid, ports[0], up_port, key)
        if args.boxes > 1:
            out["boxes"] = more_boxes(args, folder, ports, url, secret, key, servers, cluster)
        runs = ("warmup", "box_c1", "box_c64", "stream_c64", "messages_c64", "messages_stream_c64",
                "responses_c64", "responses_stream_c64")  # fmt: skip
        answered = sum(out[k]["count"] for k in runs)
        answered += sum(r["count"] for rs in out.get("boxes", {}).values() for r in rs)
        metered = count_usage_rows(url or str(folder / "box1" / "data" / "codelace.db"))
        figures = report(out, start_sec, metered, answered) | boxes_figures(out)
        print_figures(figures)
        if args.pg_stats and cluster is not None and url is not None:
            print("calls total_ms mean_ms rows statement")
            out["pg_statements"] = top_statements(cluster, url)
            for row in out["pg_statements"]:
                print(row)
        if args.json:
            args.json.write_text(json.dumps(figures | {"raw": out}, indent=2, default=str))
    finally:
        stop_all([*servers, upstream])
        if cluster is not None:
            cluster.stop()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


def more_boxes(
    args: argparse.Namespace, folder: Path, ports: list[int], url: str | None, secret: str,
    key: str, servers: list[subprocess.Popen[bytes]], cluster: Any,
) -> dict[str, Any]:  # fmt: skip
    """Start the other boxes on the same database; one box vs all of them at 64 concurrent."""
    for number, port in enumerate(ports[1:], start=2):
        config = box_config(folder / f"box{number}", port, url, secret)
        servers.append(start_server(config, port, args.workers)[0])
    urls = [f"http://127.0.0.1:{port}/v1/chat/completions" for port in ports]
    warmup = load(urls[1:], key, 8, 400)  # the other boxes warm up
    run = lambda targets: load(targets, key, args.concurrency, args.requests)  # noqa: E731
    return boxes_rounds(urls, run, args.rounds, database_cpu(cluster)) | {"warmup": [warmup]}


def boxes_figures(out: dict[str, Any]) -> dict[str, Any]:
    """The one-box and all-boxes requests/s at 64 (mean of the rounds), and their errors."""
    boxes = out.get("boxes")
    if not boxes:
        return {}
    one, every = boxes["one_box"], boxes["all_boxes"]
    return {
        "one_box_per_sec_c64": round(sum(r["rate"] for r in one) / len(one), 1),
        "all_boxes_per_sec_c64": round(sum(r["rate"] for r in every) / len(every), 1),
        "one_box_db_cpu_ms": round(sum(r["db_cpu_ms_per_request"] for r in one) / len(one), 3),
        "all_boxes_db_cpu_ms": round(
            sum(r["db_cpu_ms_per_request"] for r in every) / len(every), 3
        ),
        "boxes_errors": sum(r["errors"] for r in one + every),
    }


def count_usage_rows(target: str) -> int:
    """The requests the box metered as answered, read through its own database layer."""
    from codelace_box.db.core import close_database, open_database
    from codelace_box.db.models import UsageRecord

    open_database(target)
    try:
        return int(UsageRecord.select().where(UsageRecord.status == "ok").count())
    finally:
        close_database()


if __name__ == "__main__":
    main()
