"""`make bench-history`: does the box stay fast when the usage history is long?

It sets up a real box with the CLI (bench.run's fake upstream, provider, model, user and key)
and generates `--rows` usage rows in it (10 million by default, a tenth of them for the bench
account and its key, the rest spread over 999 other accounts, one row every few seconds over
the last 30 days, request ids made as the box makes them) with bulk SQL on the real schema (its
indexes built after the rows), and fills the running totals and rollups with migrations 9's
and 19's own backfills. `--data DIR` keeps that box in DIR and the next runs with the same
`--rows` reuse it (10 million rows take minutes to make). Then, with `serve` running on that
database, it prints:

- `/api/v1/customer/usage` latency, p50 and p99 (the big account, sequential requests);
- the longest event-loop stall while one client polls its usage 10 times a second and another
  runs inference (one request at a time): measured as the worst `/healthz` latency of a
  third client asking every 20 ms (a request waits as long as the loop is blocked, and as long
  as the busy machine keeps the processes waiting for a core); the same without the polling
  client, for comparison (what inference and the machine alone cost); and for both, the
  share of the time the server's event loop was runnable but waited for a core;
- the dashboard's refresh work (what the admin dashboard computes every 2 seconds: the
  figures and the recent requests), median and worst of 10, in this process; and its page of
  the busiest account (totals, keys, ledger, recent requests, payments), the same way;
- the portal's spend figures of the busiest account (month to date and the last 30 days, day
  by day), median and worst of 10, in this process; `usage report`'s (bench/history_report);
- inference requests/s at 64 concurrent on the full box and on a fresh empty one, in
  `--rounds` alternating rounds (the machine's other work shifts between them): the best of
  each and their ratio, and the server's CPU per request, the least of each (a figure the
  machine's other work moves far less than req/s);
- the database size (file and WAL), and how busy the machine was meanwhile (its busy share of
  all cores, ours included, and the load average).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.history_report import usage_report
from bench.procs import busy_share, free_port, machine_ticks, runqueue_wait_seconds
from bench.run import PYTHON, cli, load, measured, setup_box, start_server

OTHER_USERS = 999
SPAN_SEC = 30 * 86400
ROW_SQL = """
WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO usage_record (request_id, user_id, api_key_id, model, provider, upstream_model,
  input_tokens, output_tokens, input_per_1m_nanos, output_per_1m_nanos, cost_nanos, hold_nanos,
  status, error_code, stream, estimated, duration_ms, created_at, route, cache_read_tokens,
  cache_write_tokens, cache_write_1h_tokens, cache_read_per_1m_nanos, cache_write_per_1m_nanos,
  cache_write_1h_per_1m_nanos)
SELECT 'req_' || printf('%08x', CAST(:start + i * :step AS INTEGER)) || lower(hex(randomblob(8))),
  CASE WHEN i % 10 = 0 THEN :big ELSE :first + (i % :others) END,
  CASE WHEN i % 10 = 0 THEN :key ELSE NULL END,
  CASE WHEN i % 3 = 0 THEN 'bench/gpt' ELSE 'bench-anth/claude' END, 'bench', 'gpt-bench',
  100 + i % 900, 20 + i % 300, 1000000000, 2000000000, 140000 + i % 1000, 5000000,
  CASE WHEN i % 50 = 0 THEN 'error' ELSE 'ok' END, NULL, i % 2, 0, 300 + i % 700,
  strftime('%Y-%m-%d %H:%M:%S', :start + i * :step, 'unixepoch'), '/v1/chat/completions',
  i % 40, 0, 0, 0, 0, 0
FROM n
"""

_INDEXES_SQL = (
    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage_record' "
    "AND sql IS NOT NULL"
)


def _db(folder: Path) -> Path:
    return folder / "data" / "codelace.db"


def generate(db_path: Path, rows: int) -> float:
    """`rows` usage rows on the real schema, then the totals and rollups; seconds taken."""
    from codelace_box.db.core import close_database, connection, open_database
    from codelace_box.db.migrations.m0009_usage_totals import backfill
    from codelace_box.db.migrations.m0019_key_days import backfill as backfill_key_days

    began = time.perf_counter()
    open_database(str(db_path))
    db: Any = connection()  # the engine's own connection, through db/ (bulk SQL, no peewee)
    db.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = -200000")
    big, key = db.execute(
        'SELECT u.id, k.id FROM "user" u JOIN api_key k ON k.user_id = u.id'
    ).fetchone()
    first = _add_users()
    names = {"big": big, "key": key, "first": first, "others": OTHER_USERS}
    names |= {"start": time.time() - SPAN_SEC, "step": SPAN_SEC / max(rows, 1)}
    indexes = db.execute(_INDEXES_SQL).fetchall()
    for name, _ in indexes:
        db.execute(f'DROP INDEX "{name}"')
    chunk = 500_000
    for low in range(1, rows + 1, chunk):
        high = min(rows, low + chunk - 1)
        sql = ROW_SQL.replace("SELECT ? UNION", f"SELECT {low} UNION").replace(
            "i < ?", f"i < {high}"
        )
        with db:
            db.execute(sql, names)
        print(f"  {high:,} rows", file=sys.stderr, flush=True)
    for _, create in indexes:  # built once, sorted: far quicker than row by row
        db.execute(create)
    print("  indexes built", file=sys.stderr, flush=True)
    with db:
        db.execute("DELETE FROM account_usage; DELETE FROM key_usage; DELETE FROM usage_rollup")
        db.execute("DELETE FROM key_day_usage")  # the rows' part (the rest needs account days)
        for statement in [*backfill(), backfill_key_days()[0]]:
            db.execute(statement)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    close_database()
    return time.perf_counter() - began


def _add_users() -> int:
    """OTHER_USERS accounts (through the models, so every column is the real default)."""
    from codelace_box.db.models import User

    User.insert_many([{"email": f"other{i}@bench.test"} for i in range(OTHER_USERS)]).execute()
    first: int = User.get(User.email == "other0@bench.test").id
    return first


class Prober(threading.Thread):
    """GETs a path every `every` seconds on one keep-alive connection; records latencies."""

    def __init__(self, port: int, path: str, every: float, key: str | None = None) -> None:
        super().__init__(daemon=True)
        self.port, self.path, self.every = port, path, every
        self.headers = {"authorization": f"Bearer {key}"} if key else {}
        self.latencies: list[float] = []
        self.failures = 0
        self.stop_at = 0.0

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while time.monotonic() < self.stop_at:
            began = time.perf_counter()
            conn.request("GET", self.path, headers=self.headers)
            response = conn.getresponse()
            response.read()
            took = time.perf_counter() - began
            self.latencies.append(took * 1000)
            self.failures += response.status != 200
            time.sleep(max(0.0, self.every - took))
        conn.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2) if ordered else 0.0


def usage_latency(port: int, key: str, count: int) -> dict[str, float]:
    """/customer/usage, `count` sequential requests."""
    latencies, body = [], b"{}"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(count):
        began = time.perf_counter()
        conn.request("GET", "/api/v1/customer/usage", headers={"authorization": f"Bearer {key}"})
        body = conn.getresponse().read()
        latencies.append((time.perf_counter() - began) * 1000)
    conn.close()
    shown = json.loads(body)
    return {
        "usage_p50_ms": percentile(latencies, 0.5),
        "usage_p99_ms": percentile(latencies, 0.99),
        "usage_request_count_shown": shown["request_count"],
    }


def stall_under_polling(port: int, key: str, seconds: float, poll: bool = True) -> dict[str, Any]:
    """The worst /healthz latency while one client polls its usage 10/s (`poll`; else the
    same without it: what inference and the machine alone cost) and another runs inference
    one request at a time."""
    probes = [Prober(port, "/healthz", 0.02)]
    if poll:
        probes.append(Prober(port, "/api/v1/customer/usage", 0.1, key))
    for probe in probes:
        probe.stop_at = time.monotonic() + seconds
        probe.start()
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    inference = load(url, key, 1, 1_000_000, seconds=seconds)
    for probe in probes:
        probe.join()
    health, failures = probes[0].latencies, sum(p.failures for p in probes) + inference["errors"]
    if not poll:
        return {"healthz_max_ms_no_polling": percentile(health, 1.0),
                "healthz_p99_ms_no_polling": percentile(health, 0.99),
                "probe_failures_no_polling": failures}  # fmt: skip
    return {
        "healthz_max_ms_while_polling": percentile(health, 1.0),
        "healthz_p99_ms_while_polling": percentile(health, 0.99),
        "polled_usage_p99_ms": percentile(probes[1].latencies, 0.99),
        "polls": len(probes[1].latencies),
        "inference_during_polling": inference["count"],
        "probe_failures": failures,
    }


def stalls(pid: int, port: int, key: str, seconds: float) -> dict[str, Any]:
    """stall_under_polling with and without the polling client, and the share of each run
    the server's event loop spent runnable but waiting for a core (the machine's doing)."""
    figures: dict[str, Any] = {}
    for poll, name in ((True, "while_polling"), (False, "no_polling")):
        waited = runqueue_wait_seconds(pid)
        figures |= stall_under_polling(port, key, seconds, poll)
        share = (runqueue_wait_seconds(pid) - waited) / seconds
        figures[f"loop_waiting_for_a_core_share_{name}"] = round(share, 3)
    return figures


def dashboard_work(config: Path) -> dict[str, float]:
    """What the admin dashboard computes per refresh, timed on its own database thread."""
    import asyncio

    from admin_tui.services import AdminServices
    from codelace_box.config import load_config
    from codelace_box.db.core import query_all

    services = AdminServices(load_config(str(config)))

    async def timed() -> tuple[list[float], list[float]]:
        took, pages = [], []
        top = "SELECT user_id FROM account_usage ORDER BY requests DESC LIMIT 1"
        busiest = int((await services.run(query_all, top))[0][0])
        for _ in range(10):
            began = time.perf_counter()
            await services.run(services.dashboard)
            await services.run(services.requests, "", 50)
            took.append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            await services.run(services.user_detail, busiest)
            pages.append((time.perf_counter() - began) * 1000)
        return took, pages

    try:
        runs, pages = asyncio.run(timed())
    finally:
        services.shutdown()
    return {f"{name}_ms_{which}": round(fn(values), 2) for name, values in
            (("dashboard_refresh", runs), ("user_page", pages))
            for which, fn in (("median", statistics.median), ("max", max))}  # fmt: skip


def portal_spend(config: Path) -> dict[str, float]:
    """The portal's month-to-date and daily spend of the busiest account (what its page shows:
    reports.usage.spend_history), median and worst of 10, in this process."""
    from codelace_box.config import load_config
    from codelace_box.db.core import close_database, open_database, query_all
    from codelace_box.reports.usage import spend_history

    open_database(load_config(str(config)).database.target)
    try:
        top = "SELECT user_id FROM account_usage ORDER BY requests DESC LIMIT 1"
        busiest = int(query_all(top)[0][0])
        took = []
        for _ in range(10):
            began = time.perf_counter()
            spend_history(busiest)
            took.append((time.perf_counter() - began) * 1000)
    finally:
        close_database()
    return {"portal_spend_ms_median": round(statistics.median(took), 2),
            "portal_spend_ms_max": round(max(took), 2)}  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="usage rows to generate")
    parser.add_argument("--requests", type=int, default=4000, help="inference, at 64")
    parser.add_argument("--rounds", type=int, default=3, help="req/s rounds, empty then full")
    parser.add_argument("--usage-requests", type=int, default=300)
    parser.add_argument("--poll-seconds", type=float, default=10.0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--data", type=Path, help="the full box's folder, kept: generated on the first run, "
        "reused by the next ones with the same --rows (default: a temporary folder)"
    )  # fmt: skip
    return parser.parse_args()


def rate(pid: int, port: int, key: str, requests: int) -> tuple[float, float]:
    """Inference req/s at 64 concurrent, and the server's CPU ms per request meanwhile (what
    the machine's other work hardly changes)."""
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    load(url, key, 8, 300)  # warm-up
    run, cpu_sec, _ = measured(pid, lambda: load(url, key, 64, requests, seconds=60))
    return float(run["rate"]), round(cpu_sec * 1000 / max(run["count"], 1), 3)


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is not None and process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def full_box(folder: Path, up_port: int, rows: int) -> tuple[Path, str, int, float | None]:
    """The box with `rows` usage rows in `folder`: set up and generated, or the one generated
    there before (its config pointed at this run's ports). Config, key, port, seconds taken
    to generate (None: reused)."""
    port, state = free_port(), folder / "bench.json"
    if not state.exists():
        if folder.exists() and any(folder.iterdir()):
            raise SystemExit(f"{folder} is not empty but has no {state.name} (an unfinished run?)")
        folder.mkdir(parents=True, exist_ok=True)
        config, key = setup_box(folder, up_port, port)
        took = generate(_db(folder), rows)
        state.write_text(json.dumps({"rows": rows, "key": key}))
        return config, key, port, took
    saved = json.loads(state.read_text())
    if saved["rows"] != rows:
        raise SystemExit(f"{folder} holds {saved['rows']:,} generated rows, not {rows:,}")
    config = folder / "codelace.toml"
    text = re.sub(r"(?m)^port = \d+$", f"port = {port}", config.read_text())
    config.write_text(text)
    cli(config, "providers", "update", "bench", "--base-url", f"http://127.0.0.1:{up_port}/v1")
    cli(config, "providers", "update", "bench-anth", "--base-url", f"http://127.0.0.1:{up_port}")
    return config, str(saved["key"]), port, None


def rates(args: argparse.Namespace, empty: tuple[Path, str, int], full: tuple[Path, str, int],
          figures: dict[str, Any]) -> None:  # fmt: skip
    """Inference req/s at 64 on the empty and the full box, in alternating rounds (the
    machine's other work shifts between rounds, both boxes share it): the best of each, and
    the least server CPU per request of each."""
    got: dict[str, list[tuple[float, float]]] = {"empty": [], "full": []}
    for _ in range(args.rounds):
        for name, (config, key, port) in (("empty", empty), ("full", full)):
            server, _ = start_server(config, port, 1)
            try:
                got[name].append(rate(server.pid, port, key, args.requests))
            finally:
                stop(server)
    for name, runs in got.items():
        figures[f"req_per_sec_{name}_db"] = max(r for r, _ in runs)
        figures[f"server_cpu_ms_per_request_{name}_db"] = min(c for _, c in runs)
        figures[f"rounds_{name}_db"] = " ".join(f"{r:.0f}/s {c:.2f}ms" for r, c in runs)
    ratio = figures["req_per_sec_full_db"] / max(figures["req_per_sec_empty_db"], 1e-9)
    figures["req_per_sec_full_vs_empty"] = round(ratio, 3)
    cpu = figures["server_cpu_ms_per_request_full_db"]
    figures["cpu_per_request_full_vs_empty"] = round(
        cpu / figures["server_cpu_ms_per_request_empty_db"], 3
    )


def measure(args: argparse.Namespace, folder: Path, scratch: Path, up_port: int) -> dict[str, Any]:
    figures: dict[str, Any] = {"rows": args.rows}
    config, key, port, took = full_box(folder, up_port, args.rows)
    figures["generate_sec"] = "reused" if took is None else round(took, 1)
    empty_port = free_port()
    scratch.mkdir()
    empty_config, empty_key = setup_box(scratch, up_port, empty_port)
    ticks = machine_ticks()
    server, _ = start_server(config, port, 1)
    try:
        figures |= usage_latency(port, key, args.usage_requests)
        figures |= stalls(server.pid, port, key, args.poll_seconds)
    finally:
        stop(server)
    figures |= dashboard_work(config)
    figures |= portal_spend(config) | usage_report(config)
    rates(args, (empty_config, empty_key, empty_port), (config, key, port), figures)
    sizes = [_db(folder).with_name(_db(folder).name + s) for s in ("", "-wal")]
    figures["db_mb"] = round(sum(p.stat().st_size for p in sizes if p.exists()) / 2**20, 1)
    figures["machine_busy_share"] = round(busy_share(ticks, machine_ticks()), 2)
    figures["load_average_1_5_15"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return figures


def main() -> None:
    args = parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="codelace-bench-history-"))
    folder = args.data or scratch / "full"
    up_port = free_port()
    upstream = subprocess.Popen([PYTHON, "-m", "bench.upstream", "--port", str(up_port)])
    try:
        figures = measure(args, folder, scratch / "empty", up_port)
        for name, value in figures.items():
            print(f"{name:36} {value}")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
    finally:
        stop(upstream)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
