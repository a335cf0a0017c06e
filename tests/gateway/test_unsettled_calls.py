"""Calls whose settlement the database refuses after the upstream answered (its disk full): the
call is not charged (a 503 for an answer, an error event ending a stream), but the provider did
the work and bills the operator for it. The log said only 'a batch of 1 writes failed: database
or disk is full' and the 503's access line, so the operator could not tell which calls went
unbilled nor what they cost: unlike every other loss (a provider reporting more than the hold,
an upstream gone silent), it was never named. Now one line names the request, the model, the
tokens and the cost left uncharged. Needs a small tmpfs of its own (root, as CI runs)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.foundation.test_disk_trouble import _tmpfs, fill, metered_box
from tests.support import TLS, ServerProcess

pytestmark = pytest.mark.timeout(120)
COST = 7 * 1_000 + 8 * 2_000  # 7 input tokens at $1/1M, 8 output at $2/1M, in nano-USD


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    yield from _tmpfs(tmp_path, "4M")


def unbilled_line(request_id: str) -> str:
    return (
        f"request {request_id}: its settlement could not be written (the database is "
        f"unavailable; retry shortly): fake/m, 7 input + 8 output tokens, {COST} nano-USD "
        "not charged (the operator's loss)"
    )


def test_a_call_the_full_disk_left_unsettled_is_named_with_its_cost(
    tmp_path: Path, small_disk: Path
) -> None:
    fake = FakeOpenAI().start()
    space, port, key = metered_box(small_disk / "box", fake.base_url)
    server = ServerProcess(space.config, port)
    server.log_path = tmp_path / "serve.log"  # the log is not on the full disk
    headers = {"authorization": f"Bearer {key}"}
    body = {"model": "fake/m", "messages": [{"role": "user", "content": "hi"}]}
    url = f"{server.base_url}/v1/chat/completions"
    try:
        server.start()
        fake.push(Reply(delay_before=1.0, prompt_tokens=7, completion_tokens=8))
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(httpx.post, url, json=body, headers=headers, timeout=30)
            while not fake.requests:
                time.sleep(0.01)
            ballast = fill(small_disk)
            unsettled = answer.result()
        assert unsettled.status_code == 503, unsettled.text
        ballast.unlink()
        fake.push(Reply(pieces=["a ", "b"], piece_delay=0.5, prompt_tokens=7,
                        completion_tokens=8))  # fmt: skip
        with httpx.stream("POST", url, json={**body, "stream": True}, headers=headers,
                          timeout=30, verify=TLS) as streamed:  # fmt: skip
            lines = streamed.iter_lines()
            next(lines)
            ballast = fill(small_disk)
            text = "\n".join(lines)
        assert "database_unavailable" in text, text
        ballast.unlink()
        for request_id in (unsettled.headers["x-request-id"], streamed.headers["x-request-id"]):
            server.wait_for_log(f"request {request_id}: its settlement could not be written",
                                wait=10)  # fmt: skip
    finally:
        server.stop()
        fake.stop()
    log = server.log_text()
    for request_id in (unsettled.headers["x-request-id"], streamed.headers["x-request-id"]):
        assert log.count(unbilled_line(request_id)) == 1, log[-3000:]
    assert space.sql("SELECT COUNT(*) FROM usage_record") == [(0,)]
