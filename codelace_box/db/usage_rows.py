"""The usage row's statement on the request path (a settlement writes one per call), as
db/hotpath.py's are: hand-written, `?` parameters, the same text on both engines. A call an
Anthropic advisor model took part in adds that model's columns (migration 26), its tokens and
the prices they were charged at; any other call's row leaves them at their defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from codelace_box.db.core import Tx

_COLUMNS = (
    "request_id, user_id, api_key_id, model, provider, upstream_model, input_tokens,"
    " output_tokens, input_per_1m_nanos, output_per_1m_nanos, cost_nanos, hold_nanos, status,"
    " error_code, stream, estimated, duration_ms, created_at, route, cache_read_tokens,"
    " cache_write_tokens, cache_write_1h_tokens, cache_read_per_1m_nanos,"
    " cache_write_per_1m_nanos, cache_write_1h_per_1m_nanos"
)
_ADVISOR_COLUMNS = (
    "advisor_model, advisor_input_tokens, advisor_output_tokens, advisor_cache_read_tokens,"
    " advisor_cache_write_tokens, advisor_cache_write_1h_tokens, advisor_input_per_1m_nanos,"
    " advisor_output_per_1m_nanos, advisor_cache_read_per_1m_nanos,"
    " advisor_cache_write_per_1m_nanos, advisor_cache_write_1h_per_1m_nanos"
)
USAGE_VALUES = 25  # a row's values; a call an advisor model took part in adds 11
_USAGE_SQL = f"INSERT INTO usage_record ({_COLUMNS}) VALUES ({', '.join(['?'] * USAGE_VALUES)})"
_ADVISED_USAGE_SQL = (
    f"INSERT INTO usage_record ({_COLUMNS}, {_ADVISOR_COLUMNS}) "
    f"VALUES ({', '.join(['?'] * (USAGE_VALUES + 11))})"
)


def insert_usage(tx: Tx, values: Sequence[Any]) -> None:
    """The usage row, its columns in the order of `_USAGE_SQL` (with an advisor's:
    `_ADVISED_USAGE_SQL`)."""
    tx.execute(_USAGE_SQL if len(values) == USAGE_VALUES else _ADVISED_USAGE_SQL, values)
