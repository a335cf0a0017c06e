"""A batch in turns tells a write given as steps (a generator function, a method or a partial
of one) from a plain one (db/turns.py `_is_steps`) by the code's flags: the same answer as
inspect.isgeneratorfunction for every kind of callable a write may be, and plain for one that
cannot tell (a callable object, a builtin)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from codelace_box.db.turns import _is_steps


def steps(tx: Any, amount: int = 1) -> Iterator[None]:
    yield None


def plain(tx: Any, amount: int = 1) -> int:
    return amount


class Writer:
    def steps(self, tx: Any) -> Iterator[None]:
        yield None

    def plain(self, tx: Any) -> int:
        return 1

    def __call__(self, tx: Any) -> int:
        return 1


async def coroutine(tx: Any) -> None:
    return None


WRITES: list[tuple[Any, bool]] = [
    (steps, True),
    (plain, False),
    (partial(steps, amount=2), True),
    (partial(plain, amount=2), False),
    (partial(partial(steps), amount=2), True),
    (partial(partial(plain), amount=2), False),
    (Writer().steps, True),
    (Writer().plain, False),
    (partial(Writer().steps), True),
    (Writer(), False),
    (lambda tx: (yield None), True),
    (lambda tx: 1, False),
    (len, False),
    (coroutine, False),
]


@pytest.mark.parametrize(("write", "gives_steps"), WRITES)
def test_a_write_given_as_steps_is_told_from_a_plain_one(write: Any, gives_steps: bool) -> None:
    assert _is_steps(write) is gives_steps
    unwrapped = write
    while isinstance(unwrapped, partial):
        unwrapped = unwrapped.func
    assert inspect.isgeneratorfunction(unwrapped) is gives_steps  # the answer it replaces
