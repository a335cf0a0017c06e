"""The group commit against one request after the other: the same random admissions,
settlements and hold sweeps (account limits, capped keys, keys whose lookup missed their new
budget, the same request settled twice, costs above the hold) run as one batch for some
accounts and one write at a time for their mirrors; every caller's answer and every account
must come out the same. On PostgreSQL the batch runs in turns (db/batch.py
`_run_interleaved`); on SQLite in order."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from codelace_box.accounts.keys import create_key
from codelace_box.accounts.users import create_user
from codelace_box.billing.ledger import find_mismatches, ledger_sum, post_entry
from codelace_box.db.batch import WriteBatch
from codelace_box.db.models import ApiKey, Hold, User
from codelace_box.gateway.admission import Admission
from codelace_box.gateway.holds import release_holds_in
from codelace_box.gateway.metering import (
    Settlement,
    admit,
    admit_steps,
    settle_steps,
)

pytestmark = pytest.mark.timeout(120)
Op = Callable[[str, dict[str, Any]], Any]  # (mirror prefix, the mirror's ids) -> a write


def _accounts(prefix: str) -> dict[str, Any]:
    """Two accounts, one with a capped key, one with a key whose budget its lookup missed."""
    ids: dict[str, Any] = {}
    for n in range(2):
        user = create_user(f"{prefix}{n}@mirror.test")
        post_entry(user.id, 300_000, "admin", "seed", f"seed-{prefix}{n}")
        ids[f"u{n}"] = int(user.id)
        ids[f"capped{n}"] = int(create_key(user.id, "c", {"limit_usd": "0.0002"}).key.id)
        ids[f"stale{n}"] = int(create_key(user.id, "s", {"limit_usd": "1"}).key.id)
        ids[f"plain{n}"] = int(create_key(user.id, "p").key.id)
    return ids


def _limits(pick: float, ids: dict[str, Any], n: int) -> Admission:
    """The limits an admission is checked under, drawn from `pick` (the same for mirrors)."""
    rng = random.Random(pick)
    kind = rng.choice(["none", "plain", "capped", "stale"])
    key_id = None if kind == "none" else ids[f"{kind}{n}"]
    return Admission(
        key_id=key_id, rpm=rng.choice([0, 0, 4]), max_concurrent=rng.choice([0, 0, 3]),
        key_budgeted=kind in {"capped", "none"},
    )  # fmt: skip


def _script(seed: int) -> tuple[list[list[Op]], list[Op]]:
    """Batches of random writes (as functions of a mirror's ids), and the admissions before."""
    rng = random.Random(seed)
    before: list[Op] = []
    admitted: list[tuple[str, int]] = []
    for i in range(4):
        n, amount, pick = rng.randrange(2), rng.randrange(10_000, 60_000), rng.random()

        def first(p: str, ids: dict[str, Any], i: int = i, n: int = n, a: int = amount,
                  pick: float = pick) -> Any:  # fmt: skip
            return partial(admit, ids[f"u{n}"], f"{p}b{i}", a, _limits(pick, ids, n))

        before.append(first)
        admitted.append((f"b{i}", n))
    batches = [
        [_random_op(rng, f"x{b}-{j}", admitted) for j in range(rng.randrange(3, 9))]
        for b in range(3)
    ]
    return batches, before


def _random_op(rng: random.Random, rid: str, admitted: list[tuple[str, int]]) -> Op:
    """A settlement of an admitted request, a sweep of its hold, or a new admission `rid`."""
    n, pick, draw = rng.randrange(2), rng.random(), rng.random()
    if admitted and draw < 0.1:
        swept = rng.choice(admitted)[0]

        def sweep_op(p: str, ids: dict[str, Any], swept: str = swept) -> Any:
            return partial(release_holds_in, request_ids=[f"{p}{swept}"])

        return sweep_op
    if admitted and draw < 0.5:
        settled, owner = rng.choice(admitted)
        tokens = rng.choice([0, 5_000, 40_000, 90_000])

        def settle_op(p: str, ids: dict[str, Any], rid: str = settled, owner: int = owner,
                      tokens: int = tokens) -> Any:  # fmt: skip
            return partial(settle_steps, item=_item(f"{p}{rid}", ids, owner, tokens))

        return settle_op
    amount = rng.randrange(5_000, 120_000)

    def admit_op(p: str, ids: dict[str, Any], rid: str = rid, n: int = n, a: int = amount,
                 pick: float = pick) -> Any:  # fmt: skip
        return partial(admit_steps, user_id=ids[f"u{n}"], request_id=f"{p}{rid}",
                       amount_nanos=a, limits=_limits(pick, ids, n))  # fmt: skip

    admitted.append((rid, n))
    return admit_op


def _item(request_id: str, ids: dict[str, Any], n: int, tokens: int) -> Settlement:
    return Settlement(
        request_id=request_id, user_id=ids[f"u{n}"], key_id=None, model="acme/m1",
        provider="acme", upstream_model="m1", input_per_1m_nanos=0,
        output_per_1m_nanos=1_000_000, input_tokens=0, output_tokens=tokens,
        status="ok" if tokens else "abandoned", stream=False, charge=tokens > 0,
    )  # fmt: skip


def _said(outcome: Any) -> Any:
    return type(outcome).__name__ if isinstance(outcome, BaseException) else outcome


def _state(prefix: str, ids: dict[str, Any]) -> list[Any]:
    rows: list[Any] = []
    for n in range(2):
        user = User.get_by_id(ids[f"u{n}"])
        rows.append((user.balance_nanos, user.held_nanos, ledger_sum(user.id)))
        for kind in ("capped", "stale"):
            key = ApiKey.get_by_id(ids[f"{kind}{n}"])
            rows.append((kind, key.held_nanos, key.spent_nanos))
    holds = Hold.select().where(Hold.request_id.startswith(prefix))
    rows.append(sorted((h.request_id[len(prefix) :], h.amount_nanos) for h in holds))
    return rows


@pytest.mark.parametrize("seed", range(12))
async def test_a_batch_ends_as_its_writes_one_after_the_other(batch: WriteBatch, seed: int) -> None:
    batches, before = _script(seed)
    together, alone = _accounts("t"), _accounts("a")
    for op in before:
        for prefix, ids in (("t", together), ("a", alone)):
            with contextlib.suppress(Exception):  # refused alike for both
                op(prefix, ids)()
    for ops in batches:
        batch.careful_left = 0  # each batch starts in turns
        futures = [batch.submit(op("t", together)) for op in ops]
        in_batch = [_said(o) for o in await asyncio.gather(*futures, return_exceptions=True)]
        one_by_one = []
        for op in ops:
            try:
                one_by_one.append(_said(await batch.submit(op("a", alone))))
            except Exception as exc:
                one_by_one.append(_said(exc))
        assert in_batch == one_by_one
        assert _state("t", together) == _state("a", alone)
    assert find_mismatches() == []
