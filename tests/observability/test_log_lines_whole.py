"""Two workers share one log pipe (`serve --workers 2 | shipper`): when the reader lags, each
worker's log thread writes its buffered lines out in batches, and those batches must never cut
into each other's lines (a JSON line spliced with another is unreadable to the shipper)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

WRITER = """
import json, sys
from codelace_box.logwriter import LogWriter
out = LogWriter(1, "utf-8")
for n in range(int(sys.argv[2])):
    out.write(json.dumps({"worker": sys.argv[1], "n": n, "message": "x" * 150}) + "\\n")
out.close(10)
"""
# the line the writer puts where it dropped lines (in text: the script sets no JSON format)
DROPPED = re.compile(rb"[-\d]+ [:,\d]+ WARNING codelace_box\.log: the log's reader stalled: "
                     rb"dropped \d+ log lines here")  # fmt: skip
LINES = 12_000  # per worker: far more than the pipe and the reader's pace take at once


def test_lines_of_two_processes_on_one_lagging_pipe_stay_whole() -> None:
    read_end, write_end = os.pipe()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, name, str(LINES)], stdout=write_end, env=env
        )
        for name in ("a", "b")
    ]
    os.close(write_end)
    received = bytearray()
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while chunk := pipe.read(3000):  # a reader slower than the writers
            received += chunk
            time.sleep(0.0005)
    assert [worker.wait(30) for worker in workers] == [0, 0]
    lines = bytes(received).splitlines()
    assert len(lines) > 1000
    broken = []
    for line in lines:
        if DROPPED.fullmatch(line):
            continue
        try:
            assert json.loads(line)["worker"] in ("a", "b")
        except (ValueError, KeyError, AssertionError):
            broken.append(line[:80])
    assert broken == [], f"{len(broken)} of {len(lines)} lines cut into: {broken[:3]}"
