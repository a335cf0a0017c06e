"""`make bench-peers`: the box and the LiteLLM proxy under the same load, one after the other.

Both run one worker against the same fast fake upstream (bench.upstream) on loopback, driven by
the same bounded load generator (bench.load): added p50 at 1 concurrent (against the upstream
direct), requests/s and server CPU per request at 64 concurrent, streams/s at 64 concurrent,
resident memory (the server's process tree) and start time (spawn to its first health answer).
The ratios are printed; only ratios from one run compare (the machine's other load moves every
absolute figure). LiteLLM runs from its own virtual environment (`.bench-peers/`, made by the
Makefile, outside the product's dependencies) with its local cost map and a dead HTTP proxy, so
it fetches nothing; it has no database (its master key is checked in memory), where the box
authenticates, reserves and settles every call in SQLite. A third server under the same loads,
the stack's floor (bench.floor: a bare Sanic relay through aiohttp, none of the box's work),
shows what the chosen stack costs by itself: the box's own share is the difference.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.procs import cpu_seconds, free_port, rss_mb, tree_pids, wait_healthy
from bench.run import MODEL, PYTHON, load, setup_box, start_server

ROOT = Path(__file__).resolve().parent.parent
PEERS_VENV = Path(
    os.environ.get("BENCH_PEERS_VENV", ROOT / ".bench-peers")
).absolute()  # runs elsewhere
DEAD_PROXY = "http://127.0.0.1:9"  # any fetch from the internet fails at once
LITELLM_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOG": "ERROR",
    "LITELLM_TELEMETRY": "False",
    "HTTP_PROXY": DEAD_PROXY,
    "HTTPS_PROXY": DEAD_PROXY,
    "http_proxy": DEAD_PROXY,
    "https_proxy": DEAD_PROXY,
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
Load = Callable[..., dict[str, Any]]


def litellm_config(folder: Path, upstream_port: int, master_key: str) -> Path:
    """LiteLLM's proxy config: the bench model to the fake upstream, no telemetry."""
    config = folder / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        "      model: openai/gpt-bench\n"
        f"      api_base: http://127.0.0.1:{upstream_port}/v1\n"
        "      api_key: sk-bench-key-0001\n"
        "litellm_settings:\n  telemetry: false\n  set_verbose: false\n"
        f"general_settings:\n  master_key: {master_key}\n"
    )
    return config


def start_litellm(folder: Path, config: Path, port: int) -> tuple[subprocess.Popen[bytes], float]:
    """The LiteLLM proxy (1 worker); returns it and its seconds from spawn to healthy."""
    binary = PEERS_VENV / "bin" / "litellm"
    if not binary.exists():
        raise SystemExit(f"{binary} is missing: run `make bench-peers`, which installs it")
    log = (folder / "litellm.log").open("wb")
    began = time.perf_counter()
    process = subprocess.Popen(
        [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
         "--num_workers", "1"],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=os.environ | LITELLM_ENV,
    )  # fmt: skip
    wait_healthy(port, process, 120, path="/health/liveliness")
    return process, time.perf_counter() - began


def measure(server_pid: int, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A load's figures plus the server tree's CPU milliseconds per answered call."""
    pids = tree_pids(server_pid)
    before = cpu_seconds(pids)
    figures = run()
    spent = cpu_seconds(pids) - before
    return figures | {"cpu_ms_per_call": round(spent * 1000 / max(figures["count"], 1), 3)}


def run_loads(
    args: argparse.Namespace, pid: int, url: str, key: str, scale: float
) -> dict[str, Any]:
    """The same loads for either server; `scale` shortens the counts of a slow one."""
    n = lambda count: max(int(count * scale), 50)  # noqa: E731
    seconds = args.max_seconds
    # Warm-up, at 1 concurrent too: the box's first few hundred calls at 1 after its start
    # read a p50 a quarter to a half above the later ones' (0.94 ms against 0.61-0.82 here).
    load(url, key, 8, n(200), seconds=seconds)
    load(url, key, 1, n(200), seconds=seconds)
    out = {
        "c1": measure(pid, lambda: load(url, key, 1, n(args.latency_requests), seconds=seconds)),
        "c64": measure(pid, lambda: load(url, key, 64, n(args.requests), seconds=seconds)),
        "streams": measure(
            pid, lambda: load(url, key, 64, n(args.stream_requests), stream=True, seconds=seconds)
        ),
    }
    out["rss_mb"] = round(sum(rss_mb(p) for p in tree_pids(pid)), 1)
    for name in ("c1", "c64", "streams"):
        if out[name]["errors"] or not out[name]["count"]:
            raise SystemExit(f"{url}: {name} had errors: {json.dumps(out[name])}")
    return out


def figures(run: dict[str, Any], direct_p50: float, start_sec: float) -> dict[str, float]:
    """The compared figures of one server."""
    return {
        "req_per_sec_c64": run["c64"]["rate"],
        "added_p50_ms_c1": round(run["c1"]["p50_ms"] - direct_p50, 3),
        "cpu_ms_per_request": run["c64"]["cpu_ms_per_call"],
        "streams_per_sec_c64": run["streams"]["rate"],
        "cpu_ms_per_stream": run["streams"]["cpu_ms_per_call"],
        "rss_mb": run["rss_mb"],
        "start_sec": round(start_sec, 3),
    }


HIGHER_IS_BETTER = {"req_per_sec_c64", "streams_per_sec_c64"}


def better_by(name: str, mine: float, theirs: float) -> float:
    """How many times better `mine` is than `theirs` (higher or lower is better by figure)."""
    if name in HIGHER_IS_BETTER:
        return mine / theirs if theirs else float("inf")
    return theirs / mine if mine > 0 else float("inf")


def print_table(
    box: dict[str, float], peer: dict[str, float], version: str, floor: dict[str, float]
) -> dict[str, float]:
    """The box's and LiteLLM's columns, how many times better the box is, and the stack's
    floor with how many times better than LiteLLM it is (what the stack allows)."""
    ratios: dict[str, float] = {}
    print(f"{'figure':22} {'codelace-box':>13} {'LiteLLM ' + version:>16} {'box better by':>14}"
          f" {'stack floor':>12} {'floor better by':>16}")  # fmt: skip
    for name, mine in box.items():
        theirs, bare = peer[name], floor[name]
        ratio = better_by(name, mine, theirs)
        ratios[name] = round(ratio, 1)
        print(f"{name:22} {mine:>13} {theirs:>16} {ratio:>13.1f}x {bare:>12}"
              f" {better_by(name, bare, theirs):>15.1f}x")  # fmt: skip
    own = box["added_p50_ms_c1"] - floor["added_p50_ms_c1"]
    print(f"the box's own added p50 at 1 concurrent (box - floor): {own:.3f} ms")
    return ratios


def litellm_version() -> str:
    """The installed LiteLLM's version, from its own environment."""
    python = PEERS_VENV / "bin" / "python"
    code = "import importlib.metadata as m; print(m.version('litellm'))"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "?"


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def run_box(args: argparse.Namespace, folder: Path, up: int, direct_p50: float) -> dict[str, float]:
    port = free_port()
    config, key = setup_box(folder, up, port)
    server, start_sec = start_server(config, port, 1)
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        return figures(run_loads(args, server.pid, url, key, 1.0), direct_p50, start_sec)
    finally:
        stop(server)


def run_floor(
    args: argparse.Namespace, folder: Path, up: int, direct_p50: float
) -> dict[str, float]:
    port = free_port()
    log = (folder / "floor.log").open("wb")
    began = time.perf_counter()
    upstream = f"http://127.0.0.1:{up}/v1/chat/completions"
    server = subprocess.Popen(
        [PYTHON, "-m", "bench.floor", "--port", str(port), "--upstream", upstream],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_healthy(port, server, 30)
        start_sec = time.perf_counter() - began
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        return figures(run_loads(args, server.pid, url, "none", 1.0), direct_p50, start_sec)
    finally:
        stop(server)


def run_litellm(
    args: argparse.Namespace, folder: Path, up: int, direct_p50: float
) -> dict[str, float]:
    port, master_key = free_port(), "sk-" + secrets.token_hex(32)
    server, start_sec = start_litellm(folder, litellm_config(folder, up, master_key), port)
    try:
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        run = run_loads(args, server.pid, url, master_key, args.peer_scale)
        return figures(run, direct_p50, start_sec)
    finally:
        stop(server)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="non-streaming, at 64")
    parser.add_argument("--stream-requests", type=int, default=1000, help="streams, at 64")
    parser.add_argument("--latency-requests", type=int, default=1000, help="at 1 concurrent")
    parser.add_argument("--peer-scale", type=float, default=0.2, help="LiteLLM's share of them")
    parser.add_argument("--max-seconds", type=float, default=40.0, help="cap of each load")
    parser.add_argument("--rounds", type=int, default=1, help="alternated; medians printed")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args()


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the rounds of one server."""
    return {name: round(statistics.median(run[name] for run in runs), 3) for name in runs[0]}


def wait_listening(port: int, timeout: float = 20.0) -> None:
    """Until something accepts connections on the port (the fake upstream started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"nothing listens on port {port}")


def main() -> None:
    args = parse_args()
    folder = Path(tempfile.mkdtemp(prefix="codelace-peers-"))
    up = free_port()
    upstream = subprocess.Popen([PYTHON, "-m", "bench.upstream", "--port", str(up)])
    try:
        wait_listening(up)
        direct_url = f"http://127.0.0.1:{up}/v1/chat/completions"
        direct_p50 = load(direct_url, "none", 1, args.latency_requests)["p50_ms"]
        runs: dict[str, list[dict[str, float]]] = {"box": [], "floor": [], "litellm": []}
        for n in range(args.rounds):  # alternated, so a slow minute of the machine hits all
            here = folder / f"round{n}"
            here.mkdir()
            runs["box"].append(run_box(args, here, up, direct_p50))
            runs["floor"].append(run_floor(args, here, up, direct_p50))
            runs["litellm"].append(run_litellm(args, here, up, direct_p50))
        box, floor, peer = (medians(runs[name]) for name in ("box", "floor", "litellm"))
        version = litellm_version()
        if args.rounds > 1:
            print(f"medians of {args.rounds} alternated rounds of each")
        ratios = print_table(box, peer, version, floor)
        print(f"(load average {os.getloadavg()[0]:.2f}: absolute figures move with it)")
        if args.json:
            result = {"box": box, "litellm": peer, "litellm_version": version, "ratios": ratios,
                      "floor": floor, "runs": runs}  # fmt: skip
            args.json.write_text(json.dumps(result, indent=2))
    finally:
        stop(upstream)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
