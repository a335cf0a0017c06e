"""100 concurrent requests on a key capped at 10 requests' worth: never past the cap.

The account has credit for far more; only the key's cap stops the spending. The fake upstream
reports as many output tokens as the cap it was sent and the model charges only output, so
every admitted request costs exactly its hold: no more than 10 fit under the cap. With one
worker and with two (the cap is checked in the admission transaction, shared by processes).
"""

from __future__ import annotations

import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.bursts import EACH, FLAT, FLAT_MODEL, burst, statuses
from tests.gateway.conftest import BoxFactory

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_hundred_concurrent_requests_never_pass_the_key_cap(
    box_factory: BoxFactory, fake: FakeOpenAI, workers: str
) -> None:
    box = box_factory("--workers", workers)
    box.cli(*FLAT_MODEL)
    box.until_served(FLAT, workers=int(workers))  # each worker's catalog (PostgreSQL: reloaded)
    cap = 10 * EACH + EACH // 2
    email, _ = box.new_user("100")
    created = box.cli("keys", "create", email, "--limit-usd", f"{cap / 1e9:.9f}")
    key = created.strip().splitlines()[0]
    fake.default = Reply(completion_tokens_from_cap=True, delay_before=0.3)
    outcomes = burst([box], key, 100)
    assert statuses(outcomes).count(200) == 10, outcomes
    assert outcomes.count((402, "key_limit_reached")) == 90, outcomes
    assert len(fake.requests) == 10  # refused requests never reached the upstream
    spent, held, limit = box.query(
        "SELECT spent_nanos, held_nanos, limit_nanos FROM api_key WHERE key_prefix = ?", key[:7]
    )[0]
    assert (spent, held, limit) == (10 * EACH, 0, cap)
    usage = box.query(
        "SELECT COALESCE(SUM(cost_nanos), 0) FROM usage_record u JOIN api_key k "
        "ON k.id = u.api_key_id WHERE k.key_prefix = ?",
        key[:7],
    )
    assert usage == [(10 * EACH,)]
    assert box.balance(email) == (100 * 10**9 - 10 * EACH, 0)
    listed = {k["key_prefix"]: k for k in box.http(key).get("/api/v1/auth/key").json()}
    assert listed[key[:7]]["spent_usd"] == pytest.approx(10 * EACH / 1e9)
    assert listed[key[:7]]["limit_usd"] == pytest.approx(cap / 1e9)
    box.cli("doctor")
