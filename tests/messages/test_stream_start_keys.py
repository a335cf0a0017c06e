"""An Anthropic stream that fails before its content (an overloaded `error` event) is retried
on another provider key, also while concurrent calls take turns of the round robin: the retry
of a call whose stream one key failed went back to that same key whenever other calls had moved
the shared turn on, and the call failed (503 overloaded) while a working key sat idle."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.messages.conftest import MessagesBox
from tests.support import (
    TLS,
    ServerProcess,
    base_sections,
    eventually,
    free_port,
    write_config,
)

pytestmark = pytest.mark.timeout(60)
MODEL = "two/claude-sonnet-4-5"
BUSY, GOOD = "sk-ant-busy-key-000001", "sk-ant-good-key-000002"


@pytest.fixture(scope="module")
def two_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MessagesBox]:
    fake = FakeAnthropic(api_keys=(BUSY, GOOD)).start()
    folder = tmp_path_factory.mktemp("twokeys")
    sections = base_sections(folder, free_port())
    sections["gateway"] = {"max_retries": 1}
    config = write_config(folder / "codelace.toml", sections)
    server = ServerProcess(config, int(sections["server"]["port"]))
    box = MessagesBox(server, config, Path(sections["database"]["path"]), fake, None)  # type: ignore[arg-type]
    box.cli("migrate")
    box.cli("providers", "add", "two", "--kind", "anthropic", "--base-url", fake.base_url,
            "--key", BUSY)  # fmt: skip
    box.cli("providers", "key-add", "two", "--key", GOOD)
    box.cli("models", "set", MODEL, "--input-per-1m", "3", "--output-per-1m", "15")
    server.start()
    yield box
    server.stop()
    fake.stop()


def test_concurrent_streams_retry_an_early_error_on_another_key(two_keys: MessagesBox) -> None:
    two_keys.fake.busy_keys.add(BUSY)
    _, key = two_keys.new_key()
    body = {"model": MODEL, "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "Hi"}]}  # fmt: skip
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}

    async def many() -> list[int]:
        async with httpx.AsyncClient(
            base_url=two_keys.server.base_url, timeout=30, verify=TLS
        ) as client:
            calls = [client.post("/v1/messages", json=body, headers=headers) for _ in range(24)]
            return [answer.status_code for answer in await asyncio.gather(*calls)]

    statuses = asyncio.run(many())
    assert statuses == [200] * 24, statuses


def test_an_early_error_a_retry_hid_is_counted_as_an_upstream_error(two_keys: MessagesBox) -> None:
    """Each stream a key failed before its content counts in codelace_upstream_errors_total
    (provider, and the code of the status the event stands for: an overload is a 529's,
    `upstream_overloaded`), though the retry on the other key hid it."""
    two_keys.fake.busy_keys.add(BUSY)
    two_keys.fake.requests.clear()
    _, key = two_keys.new_key()
    body = {"model": MODEL, "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "Hi"}]}  # fmt: skip
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    url = f"{two_keys.server.base_url}/metrics"
    name = "codelace_upstream_errors_total"

    def overloaded() -> float:
        text = httpx.get(url, timeout=10, verify=TLS).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name
            and sample.labels == {"provider": "two", "code": "upstream_overloaded"}
        )

    before = overloaded()
    with httpx.Client(base_url=two_keys.server.base_url, timeout=30, verify=TLS) as client:
        for _ in range(4):
            answer = client.post("/v1/messages", json=body, headers=headers)
            assert answer.status_code == 200 and "message_stop" in answer.text, answer.text
    hidden = [r.headers.get("X-Api-Key", r.headers.get("x-api-key")) for r in
              two_keys.fake.requests].count(BUSY)  # fmt: skip
    assert hidden >= 1
    eventually(lambda: overloaded() - before == hidden, f"{hidden} overloaded errors counted")
