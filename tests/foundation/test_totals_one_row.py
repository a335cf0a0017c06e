"""A transaction that counted one usage row writes its totals by the short way
(db/totals.py `_write_one`): the very statements, parameters and order the summing way
writes for the same row, with a key and without."""

from __future__ import annotations

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
