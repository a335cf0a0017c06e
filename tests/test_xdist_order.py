"""The order in which the suite's workers get its modules (tests/xdist_order.py): the longest
first, and every module named as long one of the suite's."""

from __future__ import annotations

from tests.support import REPO_ROOT
from tests.xdist_order import LONG_MODULES, SECONDS_PER_TEST, longest_first


def test_every_module_listed_as_long_is_in_the_suite() -> None:
    """A module renamed or removed must leave the list too (its new name would go last)."""
    gone = [scope for scope in LONG_MODULES if not (REPO_ROOT / scope.split("::")[0]).is_file()]
    assert gone == [], f"tests/xdist_order.py lists modules that are not there: {gone}"
    assert all(seconds > 0 for seconds in LONG_MODULES.values())


def test_the_longest_modules_are_given_out_first() -> None:
    """A listed module of one long test goes before a module of many quick ones, which goes
    before one of fewer quick ones; ties keep xdist's order (the most tests first)."""
    long_one, seconds = max(LONG_MODULES.items(), key=lambda item: item[1])
    many = int(seconds / SECONDS_PER_TEST) - 1
    queue = {
        "tests/a/test_few.py": [1, 2],
        "tests/a/test_many.py": list(range(many)),
        "tests/a/test_one.py": [1],
        long_one: [1],
        "tests/a/test_other_one.py": [1],
    }
    assert longest_first(queue) == [
        long_one,
        "tests/a/test_many.py",
        "tests/a/test_few.py",
        "tests/a/test_one.py",
        "tests/a/test_other_one.py",
    ]
