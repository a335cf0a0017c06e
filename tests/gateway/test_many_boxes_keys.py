"""Keys on several `serve` processes on one PostgreSQL database: a provider key refused on calls
though its probe works is parked only while its provider keeps another key in rotation, however
close together two boxes park the provider's keys; an account's own key creations stop at
MAX_ACTIVE_KEYS however many arrive at once on every box."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import psycopg
import pytest

from codelace_box.accounts.key_room import MAX_ACTIVE_KEYS
from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway.bursts import FLAT
from tests.gateway.conftest import Box
from tests.gateway.test_many_boxes import boxes  # noqa: F401 (the three boxes' fixture)
from tests.support import TLS

pytestmark = pytest.mark.timeout(120)
KEYS = ("sk-fake-key-0001", "sk-fake-key-0002")


def chat(box: Box, key: str) -> int:
    answer = httpx.post(
        f"{box.url}/v1/chat/completions",
        json={"model": FLAT, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
        verify=TLS,
    )
    return answer.status_code


def test_two_boxes_parking_at_once_leave_the_provider_a_key_in_rotation(
    boxes: list[Box],  # noqa: F811
    fake: FakeOpenAI,
) -> None:
    """Both keys are refused on calls while their probes work (an organisation blocked from a
    model): each box parks the key it meets first on a second account's call, box A one, box B
    the other; the second park must see the first (in the database, not in its own snapshot of
    a moment ago), so the last key stays, as one box leaves it."""
    first, second = boxes[0], boxes[1]
    first.cli("providers", "key-add", "fake", "--key", KEYS[1])
    users = [first.new_user("10")[1] for _ in range(2)]
    time.sleep(1.2)  # both boxes see the second key
    assert chat(second, users[0]) == 200  # box B's round robin one key ahead of box A's
    for key in KEYS:
        fake.key_status[key] = 403  # refused on calls; GET /models (the probe) still works
    for box in (first, second):  # each key refused once for the first account on both boxes
        assert chat(box, users[0]) == 503
    together = threading.Barrier(2)
    answers: dict[str, int] = {}

    def second_account(box: Box, name: str) -> None:
        together.wait(10)
        answers[name] = chat(box, users[1])

    threads = [threading.Thread(target=second_account, args=pair)
               for pair in ((first, "A"), (second, "B"))]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    keys = json.loads(first.cli("providers", "list", "--json"))[0]["keys"]
    out = [key["id"] for key in keys if key["failing"]]
    assert len(out) == 1, f"one key parked, the last one kept: {keys}, {answers}"


async def _create_keys(targets: list[Box], key: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_keepalive_connections=0)
    headers = {"authorization": f"Bearer {key}"}
    urls = [f"{box.url}/api/v1/auth/key" for box in targets]
    async with httpx.AsyncClient(timeout=30, limits=limits, verify=TLS) as client:
        return await asyncio.gather(*(
            client.post(urls[n % len(urls)], json={}, headers=headers) for n in range(count)
        ))  # fmt: skip


def test_key_creations_at_once_on_every_box_stop_at_the_most_an_account_may_hold(
    boxes: list[Box],  # noqa: F811
    pg_url: str,
) -> None:
    """One key short of the most: of thirty creations at once over three boxes, one makes it."""
    email, key = boxes[0].new_user("1")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        [(user_id,)] = conn.execute('SELECT id FROM "user" WHERE email = %s', (email,)).fetchall()
        conn.execute(
            "INSERT INTO api_key (uuid, user_id, name, key_prefix, key_hash, created_at, "
            "spent_nanos, held_nanos, usage_base_nanos, can_manage_keys) "
            "SELECT gen_random_uuid()::text, %s, 'old', 'cl_x', md5(n::text), now(), 0, 0, 0, 1 "
            "FROM generate_series(1, %s) n",
            (user_id, MAX_ACTIVE_KEYS - 2),  # with the new user's own key: one short
        )
    answers = asyncio.run(_create_keys(boxes, key, 30))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] + [400] * 29, statuses
    refused = {a.json()["error"]["code"] for a in answers if a.status_code == 400}
    assert refused == {"too_many_keys"}
    with psycopg.connect(pg_url, autocommit=True) as conn:
        active = conn.execute(
            "SELECT COUNT(*) FROM api_key WHERE user_id = %s AND revoked_at IS NULL", (user_id,)
        ).fetchone()
    assert active == (MAX_ACTIVE_KEYS,)
