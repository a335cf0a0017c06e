"""A transaction that counted one usage row writes its totals by the short way
(db/totals.py `_write_one`): the very statements, parameters and order the summing way
writes for the same row, with a key and without."""

from __future__ import annotations

import random
from typing import Any

import pytest

from codelace_box.db import totals


class Recorded:
    """A transaction that keeps what it was asked to run."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, tuple[Any, ...]]] = []

    def execute(self, sql: str, params: Any = (), /) -> None:
        self.statements.append((sql, tuple(params)))


@pytest.mark.parametrize("key_id", [7, None])
def test_one_row_is_written_as_the_summing_way_writes_it(key_id: int | None) -> None:
    entry: totals.Entry = (
        (3, key_id, "bench/gpt"),
        (0, 11, 22, 3, 4, 555),
        "2026-12-05 10:11:12.131415",
        ("2026-12-05 10:11", "2026-12-05"),
    )
    short, summed = Recorded(), Recorded()
    totals._write(short, [entry])
    totals._write_many(summed, [entry])
    assert short.statements == summed.statements
    assert len(short.statements) == (5 if key_id is not None else 4)


def _by_definition(entries: list[totals.Entry]) -> list[tuple[str, tuple[Any, ...]]]:
    """The statements of a batch's totals as the module's doc defines them: each row's count,
    sums and latest moment, the rows of each kind in order (accounts, key days, keys, then the
    rollups), one statement a row."""
    accounts: dict[Any, list[Any]] = {}
    keys: dict[Any, list[Any]] = {}
    key_days: dict[Any, list[Any]] = {}
    rollups: dict[Any, list[Any]] = {}

    def count(rows: dict[Any, list[Any]], row: Any, figures: tuple[int, ...], at: str) -> None:
        old = rows.get(row, [0] * 7 + [""])
        rows[row] = [a + b for a, b in zip(old, (1, *figures), strict=False)] + [max(old[7], at)]

    for (user_id, key_id, model), figures, at, (minute, day) in entries:
        count(accounts, user_id, figures, at)
        count(key_days, (user_id, day, key_id or 0), figures, at)
        if key_id is not None:
            count(keys, (key_id, user_id), figures, at)
        count(rollups, ("day", day, model), figures, at)
        count(rollups, ("minute", minute, model), figures, at)
    return [
        *((totals.ACCOUNT_SQL, (k, *v)) for k, v in sorted(accounts.items())),
        *((totals.KEY_DAY_SQL, (*k, *v[:7])) for k, v in sorted(key_days.items())),
        *((totals.KEY_SQL, (*k, *v)) for k, v in sorted(keys.items())),
        *((totals.ROLLUP_SQL, (*k, *v[:7])) for k, v in sorted(rollups.items())),
    ]


@pytest.mark.parametrize("seed", range(40))
def test_a_batch_of_rows_is_summed_per_row_as_defined(seed: int) -> None:
    """Many usage rows (one owner and minute most often, as a batch's are; or several
    accounts, keys, models, minutes and days, their moments out of order)."""
    chance = random.Random(seed)
    mixed = seed % 2 == 1
    entries: list[totals.Entry] = []
    for _ in range(chance.randint(2, 12)):
        day = chance.choice(["2026-12-05", "2026-12-06"]) if mixed else "2026-12-05"
        minute = f"{day} 10:1{chance.randint(0, 2) if mixed else 1}"
        user_id = chance.randint(1, 3) if mixed else 3  # a key is one account's
        key_id = chance.choice([None, user_id * 10, user_id * 10 + 1]) if mixed else 7
        owner = (user_id, key_id, chance.choice(["a/m", "b/m"]) if mixed else "bench/gpt")
        figures = (chance.randint(0, 1), *(chance.randint(0, 10**6) for _ in range(5)))
        at = f"{minute}:{chance.randint(10, 59)}.{chance.randint(0, 999_999):06d}"
        entries.append((owner, figures, at, (minute, day)))  # type: ignore[arg-type]
    summed = Recorded()
    totals._write(summed, entries)
    assert summed.statements == _by_definition(entries)
