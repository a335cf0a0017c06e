"""Requests refused before any upstream call (402, 404, 429): counted, not written as usage rows.

Each server process tallies its refusals in memory (`RefusalTally.add`, no write on the request
path) and `flush()`es them into per-hour counters every few seconds and when it stops, so a
flood of refusals costs one small write per interval. The dashboard reads them back with
`refusal_counts`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from codelace_box.db.core import utcnow, write_transaction
from codelace_box.db.observability import bump_refusal, refusal_rows

REFUSED = frozenset({402, 404, 429})


@dataclass(frozen=True)
class RefusalCount:
    status: int
    code: str
    count: int


class RefusalTally:
    """One process's refusals since its last flush."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, int, str]] = Counter()

    def add(self, status: int, code: str) -> None:
        """Count a refusal now (in memory)."""
        self._counts[(utcnow().strftime("%Y-%m-%d %H"), status, code)] += 1

    def flush(self) -> None:
        """Write what was counted since the last flush (nothing when nothing was)."""
        if not self._counts:
            return
        counts, self._counts = self._counts, Counter()
        try:
            with write_transaction() as tx:
                for (hour, status, code), count in sorted(counts.items()):
                    bump_refusal(tx, hour, status, code, count)
        except BaseException:
            self._counts.update(counts)  # kept for the next flush
            raise


def refusal_counts(since: datetime) -> list[RefusalCount]:
    """Refusals from the hour of `since` on, by status and code, most first."""
    rows = refusal_rows(since.strftime("%Y-%m-%d %H"))
    return [RefusalCount(int(s), str(c), int(n)) for s, c, n in rows]
