"""A user's own usage: totals and recent requests, for /api/v1/customer/usage."""

from __future__ import annotations

from dataclasses import dataclass

from codelace_box.db.models import UsageRecord
from codelace_box.reports.traffic import usage_totals


@dataclass(frozen=True)
class UsageSummary:
    request_count: int
    input_tokens: int
    output_tokens: int
    cost_nanos: int
    recent: list[UsageRecord]


def usage_summary(user_id: int, limit: int) -> UsageSummary:
    """Totals over every request of the user, and the newest `limit` requests."""
    totals = usage_totals(user_id)
    recent = list(
        UsageRecord.select()
        .where(UsageRecord.user == user_id)
        .order_by(UsageRecord.id.desc())
        .limit(limit)
    )
    return UsageSummary(
        totals.requests, totals.input_tokens, totals.output_tokens, totals.cost_nanos, recent
    )
