"""Several workers whose temporary directory (the metrics folder's disk: often a small tmpfs)
is full. prometheus_client grows its mapped values files without allocating them, so the first
metric of a new model written there killed the worker with SIGBUS ('Worker ... died (exit
-7)'): its calls in flight got no answer and were never settled, the upstream's work unbilled
and their holds left to a sweep. Now the workers serve and charge on, and the log says once
that the metric values have no room. Needs a tmpfs of its own (root, as CI runs)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.foundation.test_disk_trouble import fill, metered_box
from tests.support import TLS, ServerProcess

pytestmark = pytest.mark.timeout(120)
MODELS = [f"fake/m{n}" for n in range(8)]


@pytest.fixture
def temp_dir() -> Iterator[Path]:
    """A 2 MiB tmpfs at a short path (Sanic's manager socket lives in it too)."""
    folder = Path(tempfile.mkdtemp(prefix="cl-tmp-", dir="/tmp"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2M,mode=1777", "tmpfs", str(folder)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if mounted.returncode:
        folder.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
        shutil.rmtree(folder, ignore_errors=True)


def status_of(call: Any, *args: Any, **kwargs: Any) -> int | str:
    """The answer's status, or the error of a worker that died under the call."""
    try:
        return int(call(*args, **kwargs).status_code)
    except httpx.TransportError as exc:
        return type(exc).__name__


def test_a_full_temporary_directory_kills_no_worker(tmp_path: Path, temp_dir: Path) -> None:
    fake = FakeOpenAI().start()
    space, port, key = metered_box(tmp_path / "box", fake.base_url)
    for model in MODELS:
        space.run("models", "set", model, "--input-per-1m", "1", "--output-per-1m", "2",
                  "--upstream-model", "m")  # fmt: skip
    space.config.write_text(space.config.read_text().replace("[server]", "[server]\nworkers = 2"))
    server = ServerProcess(space.config, port, env={"TMPDIR": str(temp_dir)})
    server.log_path = tmp_path / "serve.log"
    headers = {"authorization": f"Bearer {key}"}
    url = f"{server.base_url}/v1/chat/completions"
    statuses: list[int | str] = []
    scraped: int | str = 0
    try:
        server.start()
        hello = {"model": "fake/m", "messages": [{"role": "user", "content": "hi"}]}
        assert (
            httpx.post(url, json=hello, headers=headers, timeout=30, verify=TLS).status_code == 200
        )
        fill(temp_dir)
        with httpx.Client(timeout=30, verify=TLS) as client:
            for model in MODELS:
                for _ in range(3):  # on either worker
                    statuses.append(status_of(client.post, url, json={**hello, "model": model},
                                              headers=headers))  # fmt: skip
            scraped = status_of(client.get, f"{server.base_url}/metrics")
    finally:
        server.stop()
        fake.stop()
    log = server.log_text()
    assert "died" not in log, log[-3000:]
    assert statuses == [200] * 3 * len(MODELS), statuses
    assert scraped == 200, log[-5000:]
    assert log.count("no room for metric values in ") <= 2, log[-3000:]  # once a worker
    assert space.sql("SELECT COUNT(*) FROM usage_record") == [(1 + 3 * len(MODELS),)]
    assert space.sql('SELECT COUNT(*), SUM(held_nanos) FROM hold JOIN "user"') in ([(0, None)],)
    assert space.run("doctor").stdout.startswith("ok: ")


def test_values_files_on_a_full_disk_keep_their_values_in_memory(temp_dir: Path) -> None:
    """A file that cannot be made, or cannot grow, on the full disk: its values are kept in
    the process's memory, no empty file is left for a scrape to choke on, and a file that
    could be made still reads back every value written to it."""
    from codelace_box.metric_files import AllocatedValues

    grown = AllocatedValues(str(temp_dir / "counter_1.db"))
    fill(temp_dir)
    keys = [f'["codelace_x", "codelace_x_total", {{"model": "m{n:05}"}}, "h"]' for n in range(900)]
    for number, key in enumerate(keys):  # past the first 64 KiB: the file must grow
        grown.write_value(key, float(number), 0.0)
    assert [grown.read_value(key)[0] for key in keys] == [float(n) for n in range(len(keys))]
    stored = list(AllocatedValues.read_all_values_from_file(str(temp_dir / "counter_1.db")))
    assert stored and all(value == keys.index(key) for key, value, *_ in stored)
    made = AllocatedValues(str(temp_dir / "histogram_1.db"))
    made.write_value(keys[0], 5.0, 0.0)
    assert made.read_value(keys[0]) == (5.0, 0.0)
    made.close()
    grown.close()
    assert not (temp_dir / "histogram_1.db").exists()
