"""A user's own usage: totals and recent requests, for /api/v1/customer/usage."""

from __future__ import annotations

from dataclasses import dataclass

from codelace_box.db.core import aggregate
from codelace_box.db.models import UsageRecord


@dataclass(frozen=True)
class UsageSummary:
    request_count: int
    input_tokens: int
    output_tokens: int
    cost_nanos: int
    recent: list[UsageRecord]


_TOTALS_SQL = (
    "SELECT COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
    "COALESCE(SUM(cost_nanos), 0) FROM usage_record WHERE user_id = ?"
)


def usage_summary(user_id: int, limit: int) -> UsageSummary:
    """Totals over every request of the user, and the newest `limit` requests."""
    count, tokens_in, tokens_out, cost = aggregate(_TOTALS_SQL, (user_id,))
    recent = list(
        UsageRecord.select()
        .where(UsageRecord.user == user_id)
        .order_by(UsageRecord.id.desc())
        .limit(limit)
    )
    return UsageSummary(int(count), int(tokens_in), int(tokens_out), int(cost), recent)
