"""The time retention deletes by: the wall clock, unless it leapt ahead of the time this process
has counted (a clock set forward by mistake, a VM restored with a wrong clock, NTP's first step
on a machine whose clock ran ahead). A pass run then would delete, for good, the usage rows and
per-minute rollups that the right time keeps (doctor then finds the kept days' minutes short of
their day rollups). A leap ahead is followed only once it has held for SETTLE_SEC (a clock that
was behind and was put right: retention is late by that much, never early); a clock that goes
back is followed at once (retention deletes less). A box started with its clock already ahead
is compared with the newest time stored (`newest`: its newest usage row or ledger entry): more
than LEAP_SEC ahead of it, the time is counted from that moment, and the clock followed once it
has held for SETTLE_SEC, as a leap seen while running (a box stopped for longer than LEAP_SEC
starts so too: its retention is late by SETTLE_SEC, never early).
The hold sweep judges holds older than any request by such a clock too (gateway/holds.py,
`quiet`: retention's lines speak for the leap).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from codelace_box.db.core import utcnow

log = logging.getLogger("codelace_box.reports")
LEAP_SEC = 3600.0  # the wall clock ahead of the counted time by more: a leap (drift is less)
SETTLE_SEC = 6 * 3600.0  # a leap followed once it has held this long


def _silent(message: str, *args: object) -> None:
    """A quiet clock's warnings: none."""


class SteadyClock:
    """The wall clock (`wall`, naive UTC), held to the time counted by `counted` (monotonic
    seconds) while it leaps ahead of it."""

    def __init__(
        self,
        wall: Callable[[], datetime] = utcnow,
        counted: Callable[[], float] = time.monotonic,
        newest: datetime | None = None,
        *,
        quiet: bool = False,
    ) -> None:
        self._wall, self._counted = wall, counted
        self._say = _silent if quiet else log.warning
        self._offset = self._offset_now()  # wall minus counted, as followed
        self._leap: tuple[float, float] | None = None  # (its offset, counted when first seen)
        if newest is not None:
            self._start_from(newest)

    def _start_from(self, newest: datetime) -> None:
        """A start clock more than LEAP_SEC ahead of the newest time stored: a leap, seen now,
        the time counted from `newest` meanwhile."""
        ahead = (self._wall() - newest).total_seconds()
        if ahead <= LEAP_SEC:
            return
        self._leap = (self._offset, self._counted())
        self._offset -= ahead
        self._say(
            "the wall clock is %s ahead of the newest time in the database: retention deletes "
            "by the time counted from that moment until the clock has held for %g h (a clock "
            "set wrong at boot; or the box was stopped that long: then nothing is wrong)",
            timedelta(seconds=round(ahead)), SETTLE_SEC / 3600,
        )  # fmt: skip

    def _offset_now(self) -> float:
        return (self._wall() - datetime(1970, 1, 1)).total_seconds() - self._counted()

    def now(self) -> datetime:
        """The wall clock, or the time counted since it was last followed while it leaps."""
        offset, counted = self._offset_now(), self._counted()
        if offset - self._offset <= LEAP_SEC:
            if self._leap is not None:
                self._say("the wall clock is back in step: retention follows it again")
            self._offset, self._leap = offset, None  # (its drift followed too)
            return self._wall()
        if self._leap is None or abs(offset - self._leap[0]) > LEAP_SEC:
            self._leap = (offset, counted)
            self._say(
                "the wall clock leapt %s ahead of the time this process counted: retention "
                "deletes by the counted time until the clock has held for %g h",
                timedelta(seconds=round(offset - self._offset)), SETTLE_SEC / 3600,
            )  # fmt: skip
        elif counted - self._leap[1] >= SETTLE_SEC:
            self._say("the wall clock held its leap for %g h: retention follows it",
                        SETTLE_SEC / 3600)  # fmt: skip
            self._offset, self._leap = offset, None
            return self._wall()
        return datetime(1970, 1, 1) + timedelta(seconds=self._offset + counted)
