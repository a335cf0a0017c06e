"""Migration 26: the advisor model's part of a usage row, and the prices it was charged at.

Anthropic's advisor tool has another model (the advisor) answer inside one call, billed at that
model's rates; the box charges those tokens at the advisor's own catalog prices
(gateway/advisor.py). usage_record records them: the advisor's catalog id (NULL: no advisor),
its tokens (parts of the row's counts, as its cache reads and writes are of its input) and its
five prices. All NULL on a row without an advisor, as on the existing rows (which had none, or
one charged at the row's own prices); nullable without defaults, as upstream_error (migration
10), so that what writes a row without naming them (an older release's row) still can.
"""

from __future__ import annotations

from typing import Any

NAME = "advisor prices"

_COLUMNS = (
    '"advisor_model" VARCHAR(255)',
    *(
        f'"advisor_{name}" INTEGER'
        for name in (
            "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens",
            "cache_write_1h_tokens", "input_per_1m_nanos", "output_per_1m_nanos",
            "cache_read_per_1m_nanos", "cache_write_per_1m_nanos", "cache_write_1h_per_1m_nanos",
        )
    ),
)  # fmt: skip


def apply(db: Any) -> None:
    """Add the advisor columns to usage_record."""
    for column in _COLUMNS:
        db.execute_sql(f'ALTER TABLE "usage_record" ADD COLUMN {column}')
