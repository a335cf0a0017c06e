"""Tests that must run inside one UTC day (and so one week and one month: every period of a
key's cap and every day total ends at a midnight): a scenario of several requests against a
real box whose clock the test cannot pin. CI runs at any hour, so such a test waits out a
midnight that would fall inside it instead of failing (or being skipped) near one."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

# A scenario against a real box takes a few seconds; this leaves room for a loaded machine.
SCENARIO_SEC = 30.0


def seconds_to_midnight(now: datetime | None = None) -> float:
    """How long until the next midnight UTC."""
    moment = now or datetime.now(UTC).replace(tzinfo=None)
    midnight = datetime.combine(moment.date() + timedelta(days=1), datetime.min.time())
    return (midnight - moment).total_seconds()


def clear_of_midnight(within: float = SCENARIO_SEC) -> None:
    """Return when the next midnight UTC is more than `within` seconds away: at once on most
    of the day, after sleeping past midnight in the last `within` seconds before one."""
    left = seconds_to_midnight()
    if left <= within:
        time.sleep(left + 0.5)
