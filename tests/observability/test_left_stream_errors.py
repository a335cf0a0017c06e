"""A stream that fails upstream after its client left (the box reads on to meter it) is an
upstream failure like any other: it was logged, but not counted in
codelace_upstream_errors_total, so the dashboards that watch a provider missed it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import Reply
from tests.gateway.conftest import MODEL, BoxFactory
from tests.observability.test_metrics_and_logs import scrape, total

pytestmark = pytest.mark.timeout(60)
HELLO = [{"role": "user", "content": "Hello"}]
FIRST_CHUNK = {
    "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
    "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}],
}  # fmt: skip
OVERLOADED = {"error": {"message": "the upstream is overloaded", "type": "server_error"}}


def _events(*events: dict[str, Any]) -> list[bytes]:
    return [f"data: {json.dumps(event)}\n\n".encode() for event in events]


def test_an_upstream_failure_after_the_client_left_is_counted(box_factory: BoxFactory) -> None:
    box = box_factory(gateway={"max_retries": 0})
    _, key = box.new_user("10")
    box.fake.push(Reply(raw=_events(FIRST_CHUNK, OVERLOADED), pause_after=1))
    body = {"model": MODEL, "messages": HELLO, "stream": True}
    headers = {"authorization": f"Bearer {key}"}
    with httpx.stream(
        "POST", f"{box.url}/v1/chat/completions", json=body, headers=headers, timeout=10
    ) as answer:
        request_id = answer.headers["x-request-id"]
        next(answer.iter_lines())  # the first piece came: the client leaves
    assert box.fake.paused.wait(10)
    box.fake.resume.set()
    box.settled_row(request_id)
    box.server.wait_for_log(r"ended after its client left")
    errors = total(scrape(box), "codelace_upstream_errors_total", provider="fake")
    assert errors == 1, "the failure is counted though no client heard of it"
