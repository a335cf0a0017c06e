"""Fixtures of the hostile-upstream suite: one box in front of a hostile upstream
(tests/fakes/hostile_upstream.py) that serves as an `openai` provider (`ho`) and an `anthropic`
provider (`ha`), two keys each, and as an `openai` provider that serves the Responses API itself
(`hr`, two keys), with a 1 s read timeout, small body and event limits and a fast
key probe; and the checks both suites make (the error event of each route's dialect, a free
call)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.hostile_upstream import (  # hostile, _fresh_hostile: the suite's fixtures
    Act,
    HostileUpstream,
    _fresh_hostile,  # noqa: F401
    anthropic_body,
    anthropic_stream,
    chat_body,
    chat_stream,
    hostile,  # noqa: F401
)
from tests.support import (
    BoxDriver,
    LedgerView,
    MetricsView,
    ServerProcess,
    base_sections,
    free_port,
    write_config,
)

RETRIES = 2
KEYS = 2  # of each provider: a rate limit is asked of each once (the same key answers the same)
KINDS = ("ho", "ha")  # the openai provider, the anthropic provider
ROUTES = ("chat", "messages", "responses")
BODY_LIMIT, EVENT_LIMIT = 8192, 4096  # gateway.max_upstream_body_bytes, max_sse_event_bytes
PRICES = ("--input-per-1m", "1", "--output-per-1m", "2")
PATHS = {"chat": "/v1/chat/completions", "messages": "/v1/messages", "responses": "/v1/responses"}


@dataclass
class HostileBox(BoxDriver, LedgerView, MetricsView):
    server: ServerProcess
    config: Path
    db_path: Path

    email_prefix = "hostile"
    email_domain = "hostile.test"

    def post(self, key: str, route: str, kind: str, stream: bool) -> httpx.Response:
        """One inference call of `route` to the model of provider `kind`."""
        body: dict[str, Any] = {"model": f"{kind}/m", "stream": stream}
        if route == "chat":
            body["messages"] = [{"role": "user", "content": "hi"}]
        elif route == "messages":
            body |= {"max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
        else:
            body["input"] = "hi"
        with self.http(key) as client:
            return client.post(PATHS[route], json=body)

    def last_row(self, email: str) -> dict[str, Any]:
        rows = self.usage_rows(email)
        assert len(rows) == 1, rows
        return rows[0]


@pytest.fixture(scope="package")
def box(tmp_path_factory: pytest.TempPathFactory, hostile: HostileUpstream) -> Iterator[HostileBox]:  # noqa: F811 (the fixture)
    yield from _hostile_box(tmp_path_factory, hostile, keepalive_sec=0.3)


@pytest.fixture(scope="package")
def patient_box(
    tmp_path_factory: pytest.TempPathFactory,
    hostile: HostileUpstream,  # noqa: F811 (the fixture)
) -> Iterator[HostileBox]:
    """The same box with a 5 s keep-alive interval, which is also how long a stream's first
    event is waited for: for what is judged on that event (an error answered unstreamed, after
    every key), which 0.3 s left a loaded machine too little time to see before it began the
    stream."""
    yield from _hostile_box(tmp_path_factory, hostile, keepalive_sec=5.0)


def _hostile_box(
    tmp_path_factory: pytest.TempPathFactory,
    hostile: HostileUpstream,  # noqa: F811 (the fixture)
    keepalive_sec: float,
) -> Iterator[HostileBox]:
    folder = tmp_path_factory.mktemp("hostile")
    sections = base_sections(folder, free_port())
    sections["gateway"] = {"read_timeout_sec": 1.0, "connect_timeout_sec": 1.0,
                           "max_retries": RETRIES, "key_probe_sec": 0.5,
                           "max_upstream_body_bytes": BODY_LIMIT,
                           "max_sse_event_bytes": EVENT_LIMIT}  # fmt: skip
    config = write_config(folder / "codelace.toml", sections)
    box = HostileBox(None, config, Path(sections["database"]["path"]))  # type: ignore[arg-type]
    urls = {"ho": hostile.base_url, "ha": hostile.base_url.removesuffix("/v1")}
    for kind, name in (("ho", "openai"), ("ha", "anthropic")):
        box.cli("providers", "add", kind, "--kind", name, "--base-url", urls[kind],
                "--key", f"sk-{kind}-key-0001")  # fmt: skip
        box.cli("providers", "key-add", kind, "--key", f"sk-{kind}-key-0002")
        box.cli("models", "set", f"{kind}/m", "--provider", kind, "--upstream-model", "m",
                *PRICES, "--max-output-tokens", "1000")  # fmt: skip
    box.cli("providers", "add", "hr", "--kind", "openai", "--responses-api",
            "--base-url", hostile.base_url, "--key", "sk-hr-key-0001")  # fmt: skip
    box.cli("providers", "key-add", "hr", "--key", "sk-hr-key-0002")
    box.cli("models", "set", "hr/m", "--provider", "hr", "--upstream-model", "m",
            *PRICES, "--max-output-tokens", "1000")  # fmt: skip
    box.server = ServerProcess(config, int(sections["server"]["port"]),
                               env={"CODELACE_SSE_KEEPALIVE_SEC": str(keepalive_sec)})  # fmt: skip
    box.server.start()
    yield box
    box.server.stop()


def body_of(kind: str, **drop: bool) -> Act:
    """A 200 JSON answer of the provider's kind, with parts left out."""
    return Act(200, [chat_body(**drop) if kind == "ho" else anthropic_body(**drop)])


def stream_of(kind: str, end: bool = True) -> list[bytes]:
    return chat_stream(end=end) if kind == "ho" else anthropic_stream(end=end)


def events(text: str) -> list[str]:
    """The data of the SSE events a client got (keep-alive comments left out)."""
    return [line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data:")]


def assert_ends_with_error(route: str, text: str, words: str) -> None:
    """A stream that failed after it started ends with one error event of its route's
    dialect, carrying `words`, and nothing after it."""
    last = events(text)[-1]
    assert words in last, text
    data = json.loads(last)
    if route == "chat":
        assert "error" in data
    elif route == "messages":
        assert data["type"] == "error", text
    else:
        assert data["type"] == "response.failed", text


def assert_free(box: HostileBox, email: str, start: int, code: str) -> None:
    """A failed call: nothing charged, its hold released, an error row with `code`."""
    assert box.balance_nanos(email) == (start, 0)
    row = box.last_row(email)
    assert (row["status"], row["cost_nanos"], row["error_code"]) == ("error", 0, code), row


def leave_after_first_bytes(box: HostileBox, key: str, route: str, kind: str) -> str:
    """Start a stream, take its first bytes, leave; returns the request id."""
    body: dict[str, Any] = {"model": f"{kind}/m", "stream": True, "max_tokens": 100,
                            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    with box.http(key) as client, client.stream("POST", PATHS[route], json=body) as answer:
        assert answer.status_code == 200
        next(answer.iter_bytes())
        return answer.headers["x-request-id"]


def settled_row(box: HostileBox, email: str, wait: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + wait
    while not (rows := box.usage_rows(email)):
        assert time.monotonic() < deadline, "never settled"
        time.sleep(0.05)
    return rows[0]


def paced(writes: list[bytes], pause: float) -> list[bytes | float]:
    return [item for write in writes for item in (write, pause)]


def until_the_key_is_back(
    box: HostileBox, upstream: HostileUpstream, key: str, route: str, kind: str, refused: str
) -> None:
    """Calls (each answered) until one reaches the `refused` provider key again: its probe
    works once more, so it is back in rotation (within 5 s)."""
    deadline = time.monotonic() + 5
    while refused not in [seen.key for seen in upstream.seen[-2:]]:
        assert time.monotonic() < deadline, "the key never came back"
        assert box.post(key, route, kind, stream=False).status_code == 200
        time.sleep(0.1)
