"""Prices and aliases changed while a /v1/messages stream is under way, through a real box and
its CLI: the stream is charged at the prices of its admission, cache prices included, within
its hold, and its usage row records those prices; the next call sees the new ones."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.fakes.anthropic_upstream import Reply
from tests.messages.conftest import ALIAS, MODEL, OPENAI_MODEL, PRICES, MessagesBox, usd_nanos
from tests.support import TLS

pytestmark = pytest.mark.timeout(120)
DEAR = {"in": "30", "out": "150", "read": "3", "write": "37.5", "write_1h": "60"}


def set_prices(box: MessagesBox, prices: dict[str, str]) -> None:
    box.cli("models", "set", MODEL, "--input-per-1m", prices["in"], "--output-per-1m",
            prices["out"], "--cache-read-per-1m", prices["read"], "--cache-write-per-1m",
            prices["write"], "--cache-write-1h-per-1m", prices["write_1h"])  # fmt: skip


def test_a_stream_is_charged_the_prices_of_its_admission_cache_prices_too(
    fresh: MessagesBox,
) -> None:
    box = fresh
    email, key = box.new_key("20")
    box.fake.script(Reply(text="word " * 40, chunk_chars=5, delay_sec=0.1, input_tokens=100,
                          output_tokens=40, cache_read_input_tokens=2000,
                          cache_creation_input_tokens=500,
                          cache_creation_1h_tokens=200))  # fmt: skip
    body = {"model": ALIAS, "max_tokens": 64, "stream": True,
            "messages": [{"role": "user", "content": "Hi"}]}  # fmt: skip
    events: list[str] = []
    started = threading.Event()

    def read() -> None:
        with httpx.Client(base_url=box.server.base_url, timeout=60, verify=TLS) as http:
            headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
            with http.stream("POST", "/v1/messages", json=body, headers=headers) as answer:
                for line in answer.iter_lines():
                    events.append(line)
                    if "content_block_delta" in line:
                        started.set()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        assert started.wait(15)
        set_prices(box, DEAR)
        box.cli("models", "alias", ALIAS, OPENAI_MODEL)
        box.until_reloaded()
        assert not any("message_stop" in line for line in events), "the stream ended before"
        reader.join(60)
        assert any("message_stop" in line for line in events), events[-3:]
        [row] = box.usage_rows(email)
        expected = usd_nanos((100, PRICES["in"]), (40, PRICES["out"]), (2000, PRICES["read"]),
                             (300, PRICES["write"]), (200, PRICES["write_1h"]))  # fmt: skip
        assert (row["model"], row["cost_nanos"]) == (MODEL, expected)
        assert row["cost_nanos"] <= row["hold_nanos"]
        assert row["cache_read_per_1m_nanos"] == int(float(PRICES["read"]) * 10**9)
        assert row["output_per_1m_nanos"] == int(float(PRICES["out"]) * 10**9)
        assert box.balance_nanos(email) == (20 * 10**9 - expected, 0)
    finally:
        set_prices(box, PRICES)
        box.cli("models", "alias", ALIAS, MODEL)
        time.sleep(0.6)
    box.cli("doctor")
