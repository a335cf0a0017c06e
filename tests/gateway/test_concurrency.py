"""100 concurrent requests from a user whose balance covers 10: never an overspend.

The fake upstream reports as many output tokens as the cap it was sent (the worst case the
box reserved), and the model charges only output, so every admitted request costs exactly
its hold: no more than 10 can ever be paid for. Run with one worker and with two (admission
must hold across processes sharing the database).
"""

from __future__ import annotations

import asyncio

import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import Box, BoxFactory, cost_nanos

pytestmark = pytest.mark.timeout(90)
FLAT = "fake/flat"
CAP = 100
HELLO = [{"role": "user", "content": "Count to a hundred"}]


async def _one(client: openai.AsyncOpenAI) -> int:
    try:
        await client.chat.completions.create(model=FLAT, messages=HELLO, max_tokens=CAP)
    except openai.APIStatusError as exc:
        return exc.status_code
    return 200


async def _burst(box: Box, key: str, count: int) -> list[int]:
    client = box.async_sdk(key)
    try:
        return await asyncio.gather(*(_one(client) for _ in range(count)))
    finally:
        await client.close()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_hundred_concurrent_requests_never_overspend(
    box_factory: BoxFactory, fake: FakeOpenAI, workers: str
) -> None:
    box = box_factory("--workers", workers)
    box.cli("models", "set", FLAT, "--input-per-1m", "0", "--output-per-1m", "10",
            "--provider", "fake")  # fmt: skip
    each = cost_nanos(0, CAP, "0", "10")  # the worst case, and the actual cost, of one request
    credit = 10 * each + each // 2
    email, key = box.new_user(f"{credit / 1e9:.9f}")
    assert box.balance(email)[0] == credit
    fake.default = Reply(completion_tokens_from_cap=True, delay_before=0.3)
    statuses = asyncio.run(_burst(box, key, 100))
    assert statuses.count(200) == 10, statuses
    assert statuses.count(402) == 90
    assert len(fake.requests) == 10  # refused requests never reached the upstream
    balance, held = box.balance(email)
    assert (balance, held) == (credit - 10 * each, 0)
    assert balance >= 0
    spent = box.query(
        "SELECT COALESCE(SUM(cost_nanos), 0), COUNT(*) FROM usage_record u "
        'JOIN "user" s ON s.id = u.user_id WHERE s.email = ?',
        email,
    )
    assert spent == [(10 * each, 10)]
    box.cli("doctor")
