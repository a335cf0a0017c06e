"""The time retention deletes by: the wall clock, unless it leapt ahead of the time this process
has counted (a clock set forward by mistake, a VM restored with a wrong clock, NTP's first step
on a machine whose clock ran ahead). A pass run then would delete, for good, the usage rows and
per-minute rollups that the right time keeps (doctor then finds the kept days' minutes short of
their day rollups). A leap ahead is followed only once it has held for SETTLE_SEC (a clock that
was behind and was put right: retention is late by that much, never early); a clock that goes
back is followed at once (retention deletes less). Only a leap while the process runs is seen:
a box started with its clock ahead has nothing to compare it with.
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


class SteadyClock:
    """The wall clock (`wall`, naive UTC), held to the time counted by `counted` (monotonic
    seconds) while it leaps ahead of it."""

    def __init__(
        self,
        wall: Callable[[], datetime] = utcnow,
        counted: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wall, self._counted = wall, counted
        self._offset = self._offset_now()  # wall minus counted, as followed
        self._leap: tuple[float, float] | None = None  # (its offset, counted when first seen)

    def _offset_now(self) -> float:
        return (self._wall() - datetime(1970, 1, 1)).total_seconds() - self._counted()

    def now(self) -> datetime:
        """The wall clock, or the time counted since it was last followed while it leaps."""
        offset, counted = self._offset_now(), self._counted()
        if offset - self._offset <= LEAP_SEC:
            if self._leap is not None:
                log.warning("the wall clock is back in step: retention follows it again")
            self._offset, self._leap = offset, None  # (its drift followed too)
            return self._wall()
        if self._leap is None or abs(offset - self._leap[0]) > LEAP_SEC:
            self._leap = (offset, counted)
            log.warning(
                "the wall clock leapt %s ahead of the time this process counted: retention "
                "deletes by the counted time until the clock has held for %g h",
                timedelta(seconds=round(offset - self._offset)), SETTLE_SEC / 3600,
            )  # fmt: skip
        elif counted - self._leap[1] >= SETTLE_SEC:
            log.warning("the wall clock held its leap for %g h: retention follows it",
                        SETTLE_SEC / 3600)  # fmt: skip
            self._offset, self._leap = offset, None
            return self._wall()
        return datetime(1970, 1, 1) + timedelta(seconds=self._offset + counted)
