"""A key's limit_reset changed again and again while its requests run, on a real box with two
workers: daily, weekly, monthly, none and daily again, through the HTTP API and `keys
update`. Every change recounts the new period's spend from the key's days in the one
transaction no admission or settlement interleaves with; every charge is counted once (all of
them today: each period's figure is the whole spend), and the cap refuses at the figure
GET /api/v1/auth/key shows."""

from __future__ import annotations

import time

import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway.conftest import BoxFactory
from tests.limits.test_budget_mid_flight import (
    EACH,
    BusyKey,
    changed_under_load,
    chat,
    key_money,
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
    def make_changes(run: BusyKey) -> None:
        for by_api, change in CHANGES:
            time.sleep(0.3)
            if by_api:
                patch = f"/api/v1/auth/key/{run.key_id}"
                changed = run.box.http(run.login).patch(patch, json=change)
                assert changed.status_code == 200, changed.text
            else:
                run.box.cli("keys", "update", run.key_id[:13], *change)

    run, answered = changed_under_load(box_factory, fake, make_changes)
    busy, login, key, key_id = run.box, run.login, run.key, run.key_id
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
