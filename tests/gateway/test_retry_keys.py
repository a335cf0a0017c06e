"""A retry goes to another provider key (the contract: "retries on another provider key"), also
when other calls take turns of the round robin meanwhile: a call's retry that landed on the key
that had just failed it, because concurrent calls moved the shared turn on, failed with a 502
while a working key sat idle."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway.conftest import MODEL, BoxFactory

pytestmark = pytest.mark.timeout(60)
HELLO = [{"role": "user", "content": "Say hello"}]
BROKEN, GOOD = "sk-broken-key-000001", "sk-good-key-00000002"


def test_concurrent_calls_retry_on_another_key_not_the_one_that_failed(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    box = box_factory(keys=(BROKEN, GOOD), gateway={"max_retries": 1})
    fake.key_status[BROKEN] = 503
    _, key = box.new_user("10")

    async def many() -> list[object]:
        async with box.async_sdk(key) as client:
            calls = [client.chat.completions.create(model=MODEL, messages=HELLO) for _ in range(24)]
            return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(many())
    failures = [r for r in results if isinstance(r, Exception)]
    assert not failures, f"{len(failures)} of 24 calls failed: {failures[0]!r}"
    assert [r.api_key for r in fake.requests].count(GOOD) == 24
