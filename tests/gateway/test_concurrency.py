"""100 concurrent requests from a user whose balance covers 10: never an overspend.

The fake upstream reports as many output tokens as the cap it was sent (the worst case the
box reserved), and the model charges only output, so every admitted request costs exactly
its hold: no more than 10 can ever be paid for. Run with one worker and with two (admission
must hold across processes sharing the database).
"""

from __future__ import annotations

import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.bursts import EACH, FLAT_MODEL, burst, statuses
from tests.gateway.conftest import BoxFactory

pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_hundred_concurrent_requests_never_overspend(
    box_factory: BoxFactory, fake: FakeOpenAI, workers: str
) -> None:
    box = box_factory("--workers", workers)
    box.cli(*FLAT_MODEL)
    credit = 10 * EACH + EACH // 2
    email, key = box.new_user(f"{credit / 1e9:.9f}")
    assert box.balance(email)[0] == credit
    fake.default = Reply(completion_tokens_from_cap=True, delay_before=0.3)
    answered = statuses(burst([box], key, 100))
    assert answered.count(200) == 10, answered
    assert answered.count(402) == 90
    assert len(fake.requests) == 10  # refused requests never reached the upstream
    balance, held = box.balance(email)
    assert (balance, held) == (credit - 10 * EACH, 0)
    assert balance >= 0
    spent = box.query(
        "SELECT COALESCE(SUM(cost_nanos), 0), COUNT(*) FROM usage_record u "
        'JOIN "user" s ON s.id = u.user_id WHERE s.email = ?',
        email,
    )
    assert spent == [(10 * EACH, 10)]
    box.cli("doctor")
