"""Deadlines of "seen within N seconds": a check counts from when it began, not when its
answer arrived (on a loaded machine an answer the box gave in time may reach the test late)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def seen_within(check: Callable[[], object], since: float, within: float, what: str) -> float:
    """Repeat `check()` until it is true; fails when a check begun `within` seconds or more
    after `since` (a time.monotonic()) is still false. Returns the seconds from `since` to the
    start of the check that was true."""
    while True:
        began = time.monotonic() - since
        if check():
            return began
        assert began < within, f"{what}: still not seen {began:.2f} s after the change"
        time.sleep(0.02)


def answers(request: Callable[[], Any], status: int = 200) -> Callable[[], bool]:
    """A check for seen_within: `request()` (an HTTP call) answers `status`."""
    return lambda: bool(request().status_code == status)
