"""A key's limit_reset changed again and again while its requests run, on a real box with two
workers: daily, weekly, monthly, none and daily again, through the HTTP API and `keys
update`. Every change recounts the new period's spend from the key's days in the one
transaction no admission or settlement interleaves with; every charge is counted once (all of
them today: each period's figure is the whole spend), and the cap refuses at the figure
GET /api/v1/auth/key shows."""

from __future__ import annotations

import threading
import time

import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import BoxFactory
from tests.limits.test_budget_mid_flight import (
    CAP,
    EACH,
    FLAT,
    HELLO,
    chat,
    in_background,
    key_money,
    new_key,
    refused,
    spent_usd,
)

pytestmark = pytest.mark.timeout(120)
CHANGES = (  # (by the HTTP API?, the change)
    (True, {"limit_usd": 1000, "limit_reset": "daily"}),
    (False, ("--limit-reset", "weekly")),
    (True, {"limit_reset": "monthly"}),
    (False, ("--limit-reset", "none")),
    (True, {"limit_reset": "daily"}),
    (False, ("--limit-usd", "none", "--limit-reset", "never")),
    (True, {"limit_reset": "weekly"}),
    (False, ("--limit-reset", "monthly", "--limit-usd", "1000")),
)


def test_resets_changed_under_load_count_every_charge_once_and_cap_at_the_shown_spend(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    busy = box_factory("--workers", "2")
    busy.cli("models", "set", FLAT, "--input-per-1m", "0", "--output-per-1m", "10",
             "--provider", "fake")  # fmt: skip
    busy.until_served(FLAT, workers=2)
    fake.default = Reply(completion_tokens_from_cap=True, delay_before=0.05)
    email, login = busy.new_user("500")
    key, key_id = new_key(busy, email)
    stop = threading.Event()

    def load() -> list[int]:
        with busy.http(key) as http:
            body = {"model": FLAT, "messages": HELLO, "max_tokens": CAP}
            return [http.post("/v1/chat/completions", json=body).status_code
                    for _ in iter(stop.is_set, True)]  # fmt: skip

    senders = [in_background(load) for _ in range(4)]
    for by_api, change in CHANGES:
        time.sleep(0.3)
        if by_api:
            changed = busy.http(login).patch(f"/api/v1/auth/key/{key_id}", json=change)
            assert changed.status_code == 200, changed.text
        else:
            busy.cli("keys", "update", key_id[:13], *change)
    stop.set()
    answered = [status for sender in senders for status in sender.result(60)]
    assert answered and set(answered) == {200}
    total = len(answered) * EACH
    assert key_money(busy, key_id) == (total, 0)
    assert spent_usd(busy, key, key_id) == pytest.approx(total / 1e9)
    patch = f"/api/v1/auth/key/{key_id}"
    capped = busy.http(login).patch(patch, json={"limit_usd": (total + EACH) / 1e9})
    assert capped.json()["spent_usd"] == pytest.approx(total / 1e9)
    assert chat(busy, key).status_code == 200  # the cap exactly
    assert refused(chat(busy, key)) == (402, "key_limit_reached")
    daily = busy.http(login).patch(patch, json={"limit_reset": "daily"})
    assert daily.json()["spent_usd"] == pytest.approx((total + EACH) / 1e9)
    assert refused(chat(busy, key)) == (402, "key_limit_reached")
    busy.cli("doctor")
