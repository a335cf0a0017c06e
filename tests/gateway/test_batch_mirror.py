"""The group commit against one request after the other: the same random admissions,
settlements and hold sweeps (account limits, capped keys, keys whose lookup missed their new
budget, the same request settled twice, costs above the hold, accounts an operator's debit
left below their holds, plain writes among the steps, a write that fails after it wrote)
run as one batch for some accounts and one write at a time for their mirrors; every
caller's answer, every account, its ledger, usage rows, totals and rollups, and the metrics
must come out the same. The batch runs in turns (db/turns.py `run_interleaved`), and again
careful when a write fails."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from prometheus_client import REGISTRY

from codelace_box.accounts.keys import create_key
from codelace_box.accounts.users import create_user
from codelace_box.billing.ledger import find_mismatches, ledger_sum, post_entry
from codelace_box.db.batch import WriteBatch
from codelace_box.db.core import Tx, query_all
from codelace_box.db.models import ApiKey, Hold, User
from codelace_box.gateway.admission import Admission
from codelace_box.gateway.holds import release_holds_in
from codelace_box.gateway.metering import (
    Settlement,
    admit,
    admit_in,
    admit_steps,
    settle_in,
    settle_steps,
)

pytestmark = pytest.mark.timeout(120)
Op = Callable[[str, dict[str, Any]], Any]  # (mirror prefix, the mirror's ids) -> a write


def _accounts(prefix: str, seed: int) -> dict[str, Any]:
    """Two accounts, each with a capped key, a key whose budget its lookup missed and a plain
    key; the model its settlements are of (its metrics' label: this mirror's, this seed's)."""
    ids: dict[str, Any] = {"model": f"{prefix}{seed}/m1"}
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
    if rng.random() < 0.5:  # an operator's debit: the account below its holds, settlements capped
        n, left = rng.randrange(2), rng.randrange(30, 90)

        def debit_op(p: str, ids: dict[str, Any], n: int = n, left: int = left) -> Any:
            user = User.get_by_id(ids[f"u{n}"])  # `left` % of its holds covered
            debit = user.balance_nanos - user.held_nanos * left // 100
            return partial(post_entry, user.id, -debit, "admin", "a correction", f"debit-{p}")

        before.append(debit_op)
    batches = []
    for b in range(3):
        settling = rng.random() < 0.3  # settlements and sweeps only: the batch runs in turns
        ops = [_random_op(rng, f"x{b}-{j}", admitted, settling) for j in range(rng.randrange(3, 9))]
        batches.append(ops)
    return batches, before


def _random_op(rng: random.Random, rid: str, admitted: list[tuple[str, int]], settling: bool) -> Op:
    """A settlement of an admitted request, a sweep of its hold, or a new admission `rid`
    (either as steps or as a plain write), or now and then a write that fails after it wrote;
    `settling`: only the first two (to its end in turns: nothing refused)."""
    n, pick, plain = rng.randrange(2), rng.random(), rng.random() < 0.25
    draw = rng.uniform(0.03, 0.5) if settling else rng.random()
    if draw < 0.03:
        return lambda p, ids, n=n: partial(_fails_after_it_wrote, user_id=ids[f"u{n}"])
    if admitted and draw < 0.1:
        swept = rng.choice(admitted)[0]

        def sweep_op(p: str, ids: dict[str, Any], swept: str = swept) -> Any:
            return partial(release_holds_in, request_ids=[f"{p}{swept}"])

        return sweep_op
    if admitted and draw < 0.5:
        settled, owner = rng.choice(admitted)
        tokens = rng.choice([0, 5_000, 40_000, 90_000])
        key = rng.choice([None, "plain", "capped"])

        def settle_op(p: str, ids: dict[str, Any], rid: str = settled, owner: int = owner,
                      tokens: int = tokens, key: str | None = key,
                      plain: bool = plain) -> Any:  # fmt: skip
            item = _item(f"{p}{rid}", ids, owner, tokens, key)
            return partial(settle_in if plain else settle_steps, item=item)

        return settle_op
    amount = rng.randrange(5_000, 120_000)

    def admit_op(p: str, ids: dict[str, Any], rid: str = rid, n: int = n, a: int = amount,
                 pick: float = pick, plain: bool = plain) -> Any:  # fmt: skip
        return partial(admit_in if plain else admit_steps, user_id=ids[f"u{n}"],
                       request_id=f"{p}{rid}", amount_nanos=a,
                       limits=_limits(pick, ids, n))  # fmt: skip

    admitted.append((rid, n))
    return admit_op


def _fails_after_it_wrote(tx: Tx, user_id: int) -> None:
    tx.execute('UPDATE "user" SET balance_nanos = balance_nanos - 7 WHERE id = ?', (user_id,))
    raise RuntimeError("a write that fails after it wrote")


def _item(request_id: str, ids: dict[str, Any], n: int, tokens: int, key: str | None) -> Settlement:
    return Settlement(
        request_id=request_id, user_id=ids[f"u{n}"],
        key_id=None if key is None else ids[f"{key}{n}"], model=ids["model"], provider="acme",
        upstream_model="m1", input_per_1m_nanos=0,
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
        rows.append(_rows(_ENTRIES, user.id, prefix))
        rows.append(query_all(_ACCOUNT_TOTALS, (user.id,)))
        for kind in ("capped", "stale", "plain"):
            key = ApiKey.get_by_id(ids[f"{kind}{n}"])
            rows.append((kind, key.held_nanos, key.spent_nanos))
            rows.append(query_all(_KEY_TOTALS, (key.id,)))
    rows.append(_rows(_USAGE, prefix + "%", prefix))
    rows.append(query_all(_ROLLUPS, (ids["model"],)))
    holds = Hold.select().where(Hold.request_id.startswith(prefix))
    rows.append(sorted((h.request_id[len(prefix) :], h.amount_nanos, h.key_held) for h in holds))
    labels = {"model": ids["model"], "provider": "acme"}
    for outcome in ("ok", "abandoned"):
        rows.append(REGISTRY.get_sample_value(_REQUESTS, {**labels, "outcome": outcome}))
    rows.append(REGISTRY.get_sample_value(_TOKENS, {**labels, "kind": "output"}))
    return rows


_ENTRIES = "SELECT idempotency_key, amount_nanos, kind FROM ledger_entry WHERE user_id = ?"
_USAGE = (
    "SELECT request_id, cost_nanos, hold_nanos, status FROM usage_record WHERE request_id LIKE ?"
)
_ACCOUNT_TOTALS = "SELECT requests, output_tokens, cost_nanos FROM account_usage WHERE user_id = ?"
_KEY_TOTALS = "SELECT requests, output_tokens, cost_nanos FROM key_usage WHERE api_key_id = ?"
_ROLLUPS = (
    "SELECT period, SUM(requests), SUM(output_tokens), SUM(cost_nanos) FROM usage_rollup"
    " WHERE model = ? GROUP BY period ORDER BY period"
)
_REQUESTS, _TOKENS = "codelace_inference_requests_total", "codelace_tokens_total"


def _rows(sql: str, param: Any, prefix: str) -> list[Any]:
    """The rows of `sql`, their first column (a request id or an idempotency key with the
    mirror's prefix: "t3", "usage:t3", "seed-t0") without the prefix."""
    mirrored = re.compile(f"^([a-z]+[:-])?{prefix}")
    return sorted((mirrored.sub(r"\1", str(row[0])), *row[1:]) for row in query_all(sql, (param,)))


@pytest.mark.parametrize("seed", range(24))
async def test_a_batch_ends_as_its_writes_one_after_the_other(batch: WriteBatch, seed: int) -> None:
    batches, before = _script(seed)
    together, alone = _accounts("t", seed), _accounts("a", seed)
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
