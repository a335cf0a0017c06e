"""`make bench-audit`: do `doctor` and `audit` stay bounded when the audit log is long?

It makes a box (SQLite, a fresh config and database under a scratch folder, or `--data DIR`
kept and reused by the next runs with the same `--entries`), writes `--entries` audit entries
into it (200,000 by default) with the box's own `record` (chained, the head kept), a user's
before and after as `users limits` records them, and then runs the real CLI on it:
`doctor`, `audit` and `audit --json` (their output dropped), each as its own process,
printing its wall time, CPU time and peak memory (its resident set's high-water mark, VmHWM);
and, in this process, the dashboard's audit screen read (its newest 200 entries), median of
10. `--tree DIR` also runs the CLI of another checkout (an older release: "before") first;
`--postgres` makes the box on a throwaway PostgreSQL cluster (bench/pgcluster.py) instead.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.boxes import box_config, new_secret
from bench.pgcluster import PgCluster
from bench.procs import free_port
from bench.run import PYTHON, cli


def seed(config: Path, entries: int) -> float:
    """Write `entries` chained audit entries in one transaction; seconds taken."""
    from codelace_box.audit import record
    from codelace_box.config import load_config
    from codelace_box.db.core import close_database, open_database, write_transaction

    began = time.perf_counter()
    open_database(load_config(str(config)).database.target)
    try:
        with write_transaction() as tx:
            for i in range(entries):
                email = f"user{i % 997}@bench.test"
                before = {"id": f"u-{i % 997:08d}", "email": email, "status": "active",
                          "balance_usd": f"{i % 5000}.25", "rpm": None,
                          "max_concurrent": None}  # fmt: skip
                after = before | {"rpm": 60 + i % 100, "max_concurrent": 4}
                record(tx, "cli", "users limits", email, before, after)
    finally:
        close_database()
    return time.perf_counter() - began


# The command's own peak memory: VmHWM (getrusage's ru_maxrss of a child started with vfork, as
# subprocess does, is its parent's peak when that was higher: this process seeded the log).
PEAK_MEMORY = (
    "import sys\n"
    "from codelace_box.cli.main import main\n"
    "try:\n"
    "    main(sys.argv[1:])\n"
    "finally:\n"
    "    peak = [line for line in open('/proc/self/status') if line.startswith('VmHWM:')]\n"
    "    print('peak_kb', peak[0].split()[1], file=sys.stderr)\n"
)


def measured(config: Path, *args: str, tree: Path | None = None) -> dict[str, Any]:
    """One CLI command's wall and CPU seconds (CPU: the figure a busy machine moves less),
    peak memory (MB) and exit status, its output dropped; run from `tree`'s codelace_box
    (None: this one's)."""
    command = [PYTHON, "-c", PEAK_MEMORY, "--config", str(config), *args]
    env = os.environ | ({"PYTHONPATH": str(tree)} if tree else {})
    with tempfile.TemporaryFile("w+") as err:
        began = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=err, cwd=tree, env=env
        )
        _, status, usage = os.wait4(process.pid, 0)
        took = time.perf_counter() - began
        err.seek(0)
        peak_kb = int(err.read().split("peak_kb ")[1].split()[0])
    return {
        "seconds": round(took, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "exit": os.waitstatus_to_exitcode(status),
    }


def dashboard_read_ms(config: Path) -> float:
    """The dashboard's audit screen read (admin_tui/service_audit.py entries), ms, median of 10."""
    from admin_tui.screens.audit import AUDIT_SHOWN
    from admin_tui.service_audit import entries
    from codelace_box.config import load_config
    from codelace_box.db.core import close_database, open_database

    open_database(load_config(str(config)).database.target)
    try:
        took = []
        for _ in range(10):
            began = time.perf_counter()
            entries(AUDIT_SHOWN)
            took.append((time.perf_counter() - began) * 1000)
    finally:
        close_database()
    return round(statistics.median(took), 1)


def box(folder: Path, entries: int, url: str | None = None) -> tuple[Path, float | None]:
    """The bench box in `folder` with `entries` entries (made once, then reused; on the
    PostgreSQL database `url`, made every time)."""
    folder = folder.resolve()
    config, marker = folder / "codelace.toml", folder / f"audit-{entries}.done"
    if marker.exists() and url is None:
        return config, None
    if folder.exists():
        shutil.rmtree(folder)
    config = box_config(folder, free_port(), url, new_secret())
    cli(config, "migrate")
    took = seed(config, entries)
    marker.write_text("")
    return config, took


def commands(config: Path, tree: Path | None) -> dict[str, Any]:
    """doctor, audit and audit --json measured, from `tree`'s checkout (None: this one)."""
    runs = {"doctor": ["doctor"], "audit": ["audit"], "audit_json": ["audit", "--json"]}
    return {name: measured(config, *words, tree=tree) for name, words in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--data", type=Path, default=None, help="keep (and reuse) the box here")
    parser.add_argument("--tree", type=Path, default=None,
                        help="run the CLI of the checkout there (another release)")  # fmt: skip
    parser.add_argument("--postgres", action="store_true", help="on a throwaway cluster")
    args = parser.parse_args()
    scratch = None if args.data else Path(tempfile.mkdtemp(prefix="codelace-bench-audit-"))
    cluster = PgCluster(free_port()).start() if args.postgres else None
    try:
        url = cluster.new_database() if cluster else None
        config, seeded = box(args.data or scratch / "box", args.entries, url)  # type: ignore[operator]
        figures: dict[str, Any] = {"entries": args.entries, "seed_seconds": seeded}
        for tree in ([args.tree] if args.tree else []) + [None]:
            figures["before" if tree else "this"] = commands(config, tree)
        figures["dashboard_audit_ms"] = dashboard_read_ms(config)
        print(json.dumps(figures, indent=2))
    finally:
        if cluster is not None:
            cluster.stop()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
