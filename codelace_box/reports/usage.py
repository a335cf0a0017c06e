"""A user's own usage: totals (running counters) and recent requests, for
/api/v1/customer/usage."""

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


def recent_usage(user_id: int, limit: int, before_id: int | None = None) -> list[UsageRecord]:
    """The user's newest `limit` usage rows (older than row `before_id`: the next page), read
    along the (user_id, id) index: the cost is the page's, however long the history."""
    query = UsageRecord.select().where(UsageRecord.user == user_id)
    if before_id is not None:
        query = query.where(UsageRecord.id < before_id)
    return list(query.order_by(UsageRecord.id.desc()).limit(limit))


def usage_summary(user_id: int, limit: int) -> UsageSummary:
    """Totals over every request of the user (the running totals), and the newest `limit`
    requests. Its reads grow with history: run it with db.offload.run_in_db_thread."""
    totals = usage_totals(user_id)
    recent = recent_usage(user_id, limit)
    return UsageSummary(
        totals.requests, totals.input_tokens, totals.output_tokens, totals.cost_nanos, recent
    )
