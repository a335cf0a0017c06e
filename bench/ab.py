"""`python -m bench.ab A B`: two builds of the box side by side, in paired, alternated rounds.

A and B are git revisions (exported with `git archive` into a temporary folder) or folders
holding a source tree. Each gets a real `serve` (one worker, SQLite, set up with its own CLI)
in front of one shared fast fake upstream (bench.upstream); after a warm-up, every round runs
the same bounded load (bench.load, at `--concurrency`, 1 by default) against A and then B, or
B and then A (the order alternates). Printed: each build's median p50 and server CPU per call,
and the median of the paired differences B - A with the rounds B won. A round's two runs are
seconds apart, so the machine's other load moves both alike. On the shared 2-core machine
(load average 8-9), where one run's p50 moved by 20-50 us, a build against itself (A = B)
read +8 and -2 us in two runs of 12 and 24 rounds (B lower in 5 of 12 and 14 of 24): a cut
worth taking shows in most rounds, not in the medians alone. Only loopback is used.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.procs import cpu_seconds, free_port, tree_pids, wait_healthy
from bench.run import PYTHON, load

ROOT = Path(__file__).resolve().parent.parent
SETUP = (
    "import sys; from pathlib import Path; from bench.run import setup_box; "
    "config, key = setup_box(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])); "
    "print(config); print(key)"
)


class Build:
    """One build's source tree and its running box."""

    def __init__(self, name: str, tree: Path) -> None:
        self.name, self.tree = name, tree
        self.port = free_port()
        self.key = ""
        self.server: subprocess.Popen[bytes] | None = None
        self.p50: list[float] = []
        self.cpu: list[float] = []

    def start(self, folder: Path, upstream_port: int) -> None:
        """Set the box up with this tree's own CLI and start its `serve`."""
        setup = subprocess.run(
            [PYTHON, "-c", SETUP, str(folder), str(upstream_port), str(self.port)],
            cwd=self.tree, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if setup.returncode != 0:
            raise SystemExit(f"{self.name}: setting the box up failed: {setup.stderr.strip()}")
        config, self.key = setup.stdout.split()
        log = (folder / "serve.log").open("wb")
        self.server = subprocess.Popen(
            [PYTHON, "-m", "codelace_box", "--config", config, "serve"],
            cwd=self.tree, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_healthy(self.port, self.server, 60)

    def run(self, concurrency: int, requests: int, stream: bool = False) -> None:
        """One measured load: its p50 (ms) and the server's CPU per call (ms)."""
        assert self.server is not None
        url = f"http://127.0.0.1:{self.port}/v1/chat/completions"
        pids = tree_pids(self.server.pid)
        before = cpu_seconds(pids)
        figures = load(url, self.key, concurrency, requests, stream=stream, seconds=60.0)
        if figures["errors"] or not figures["count"]:
            raise SystemExit(f"{self.name}: the load failed: {figures}")
        self.p50.append(float(figures["p50_ms"]))
        self.cpu.append((cpu_seconds(pids) - before) * 1000 / figures["count"])

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(30)


def export(revision: str, into: Path) -> Path:
    """A folder holding `revision`'s tree: the folder itself if it is one, else a git export."""
    given = Path(revision)
    if given.is_dir():
        return given.resolve()
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision], capture_output=True, check=False
    )
    if archive.returncode != 0:
        raise SystemExit(f"no such revision or folder: {revision}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def paired(a: list[float], b: list[float]) -> dict[str, Any]:
    """The median of the differences b - a, round by round, and the rounds b was lower."""
    differences = [y - x for x, y in zip(a, b, strict=True)]
    return {
        "median_difference": round(statistics.median(differences), 4),
        "b_lower": sum(d < 0 for d in differences),
        "rounds": len(differences),
    }


def summary(a: Build, b: Build) -> dict[str, Any]:
    builds = {
        build.name: {
            "p50_ms": round(statistics.median(build.p50), 4),
            "cpu_ms_per_call": round(statistics.median(build.cpu), 4),
            "rounds_p50_ms": build.p50,
            "rounds_cpu_ms": [round(c, 4) for c in build.cpu],
        }
        for build in (a, b)
    }
    return {
        "builds": builds,
        "p50_ms_b_minus_a": paired(a.p50, b.p50),
        "cpu_ms_b_minus_a": paired(a.cpu, b.cpu),
    }


def print_summary(out: dict[str, Any]) -> None:
    for name, figures in out["builds"].items():
        print(f"{name}: p50 {figures['p50_ms']:.3f} ms, server CPU "
              f"{figures['cpu_ms_per_call']:.3f} ms a call (medians)")  # fmt: skip
    for label, key in (("p50", "p50_ms_b_minus_a"), ("CPU a call", "cpu_ms_b_minus_a")):
        pair = out[key]
        print(f"B - A, {label}: {pair['median_difference'] * 1000:+.1f} us (median of paired "
              f"rounds; B lower in {pair['b_lower']} of {pair['rounds']})")  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("a", help="a git revision or a source folder")
    parser.add_argument("b", help="a git revision or a source folder")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--requests", type=int, default=1000, help="per build and round")
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--stream", action="store_true", help="streamed calls (16 chunks)")
    parser.add_argument("--json", type=Path, help="write the figures (every round's) here")
    return parser.parse_args()


def compare(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    up_port = free_port()
    upstream = subprocess.Popen([PYTHON, "-m", "bench.upstream", "--port", str(up_port)])
    a = Build("A", export(args.a, scratch / "a"))
    b = Build("B", export(args.b, scratch / "b"))
    try:
        wait_healthy(up_port, upstream, 10, path="/v1/models")
        for build in (a, b):
            build.start(scratch / f"box-{build.name}", up_port)
            load(f"http://127.0.0.1:{build.port}/v1/chat/completions", build.key, 8, 400)
        for number in range(args.rounds):
            for build in (a, b) if number % 2 == 0 else (b, a):
                build.run(args.concurrency, args.requests, args.stream)
            print(f"round {number + 1}: A {a.p50[-1]:.3f} ms, B {b.p50[-1]:.3f} ms", flush=True)
    finally:
        for build in (a, b):
            build.stop()
        upstream.terminate()
        upstream.wait(10)
    return summary(a, b)


def main() -> None:
    args = parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="codelace-ab-"))
    try:
        out = compare(args, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print_summary(out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
