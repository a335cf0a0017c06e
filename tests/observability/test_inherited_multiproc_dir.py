"""`serve` (one worker) started with a PROMETHEUS_MULTIPROC_DIR in its environment (a container
image or a unit file shared with a gunicorn app sets it): /metrics is the box's own, this run's,
not whatever processes wrote into that folder before."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.gateway.conftest import MODEL, BoxFactory
from tests.observability.test_metrics_and_logs import scrape, total
from tests.support import cli_env

HELLO = [{"role": "user", "content": "Hello"}]
OTHER_APP = (
    "from prometheus_client import Counter, Gauge; "
    "Counter('other_app_requests', 'another app').inc(5); "
    "Gauge('codelace_active_streams', 'a run killed mid-stream', "
    "multiprocess_mode='livesum').inc(3)"
)


def test_one_worker_ignores_a_metrics_folder_it_inherited(
    box_factory: BoxFactory, tmp_path: Path
) -> None:
    """prometheus_client turned multiprocess mode on from the inherited variable: the scrape
    summed every file in the folder, another app's families and a killed run's live streams
    (which then never went back to 0) among them."""
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(folder)}
    subprocess.run([sys.executable, "-c", OTHER_APP], env=cli_env(env), check=True)
    box = box_factory(env=env)
    _, key = box.new_user("10")
    with box.http(key) as client:
        done = client.post("/v1/chat/completions", json={"model": MODEL, "messages": HELLO})
        assert done.status_code == 200
    samples = scrape(box)
    assert "other_app_requests_total" not in samples
    assert total(samples, "codelace_active_streams") == 0
    assert total(samples, "codelace_inference_requests_total") == 1
