"""`make bench-history`'s `usage report` figures: the report over all time and over the last
30 days, by user, by key and by model, from the usage rows (reports/spend.py, the old way) and from
the day totals with only the window's partial edge days from the rows (reports/spend_days.py,
what the CLI runs); median of `runs`, in this process, on the bench's full box."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any


def usage_report(config: Path, runs: int = 3) -> dict[str, float]:
    """Milliseconds per report, `report_{by}_{window}_ms_{rows|days}`; the two ways' figures
    are checked equal (the bench's rows are all there)."""
    from codelace_box.config import load_config
    from codelace_box.db.core import close_database, open_database, utcnow
    from codelace_box.reports.spend import spend_report
    from codelace_box.reports.spend_days import daily_spend_report

    open_database(load_config(str(config)).database.target)
    figures: dict[str, float] = {}
    try:
        for window, since in (("all", None), ("30d", utcnow() - timedelta(days=30))):
            for by in ("user", "key", "model"):
                old, ms_old = _timed(spend_report, runs, by, since)
                new, ms_new = _timed(daily_spend_report, runs, by, since)
                if old != new:
                    raise SystemExit(f"usage report by {by} over {window}: the two ways differ")
                figures[f"report_{by}_{window}_ms_rows"] = ms_old
                figures[f"report_{by}_{window}_ms_days"] = ms_new
    finally:
        close_database()
    return figures


def _timed(report: Any, runs: int, *args: Any) -> tuple[Any, float]:
    took, found = [], None
    for _ in range(runs):
        began = time.perf_counter()
        found = report(*args)
        took.append((time.perf_counter() - began) * 1000)
    return found, round(statistics.median(took), 1)
