"""One metered request in full, for the dashboard: its route, model, provider, the API key it
came with, tokens, the prices it was charged at, cost, duration, status and error."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from codelace_box.db.core import parse_time
from codelace_box.db.models import ApiKey, UsageRecord, User
from codelace_box.errors import NotFound

# The column holding the upstream's (masked) error text, where this schema has one.
_ERROR_TEXT_FIELDS = ("upstream_error", "error_text", "error_message", "error_detail")


@dataclass(frozen=True)
class RequestDetail:
    """Everything the usage row says about one request."""

    id: int
    request_id: str
    created_at: datetime
    route: str
    email: str
    user_id: int
    key: str  # 'cl_abcd… (name)', or '' when the request came without an API key
    model: str
    provider: str
    upstream_model: str
    status: str
    error_code: str | None
    error_text: str
    stream: bool
    estimated: bool
    duration_ms: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    prices_per_1m_nanos: dict[str, int]  # input, output, cache read, cache write, 1h write
    cost_nanos: int
    hold_nanos: int
    # an Anthropic advisor model's part: its catalog id (None: none), its tokens (input, cache
    # read, cache write, output: parts of the above) and the prices they were charged at
    advisor_model: str | None = None
    advisor_tokens: tuple[int, int, int, int] = (0, 0, 0, 0)
    advisor_prices_per_1m_nanos: dict[str, int] = field(default_factory=dict)
    cache_write_1h_tokens: int = 0  # of cache_write_tokens: the 1-hour writes (their price)
    advisor_cache_write_1h_tokens: int = 0  # of the advisor's cache writes


def request_detail(row_id: int) -> RequestDetail:
    """A usage row by its id; NotFound if it is gone."""
    row = UsageRecord.get_or_none(UsageRecord.id == row_id)
    if row is None:
        raise NotFound(f"no request {row_id}", code="request_not_found")
    user = User.get_by_id(row.__data__["user"])
    key_id = row.__data__.get("api_key")
    key = ApiKey.get_or_none(ApiKey.id == key_id) if key_id else None
    detail = RequestDetail(
        id=row.id, request_id=row.request_id, created_at=parse_time(row.created_at),
        route=row.route, email=user.email, user_id=user.id,
        key=f"{key.key_prefix}… ({key.name or 'unnamed'})" if key else "",
        model=row.model, provider=row.provider, upstream_model=row.upstream_model,
        status=row.status, error_code=row.error_code, error_text=_error_text(row),
        stream=bool(row.stream), estimated=bool(row.estimated), duration_ms=row.duration_ms,
        input_tokens=row.input_tokens, output_tokens=row.output_tokens,
        cache_read_tokens=row.cache_read_tokens, cache_write_tokens=row.cache_write_tokens,
        prices_per_1m_nanos={
            "input": row.input_per_1m_nanos, "output": row.output_per_1m_nanos,
            "cache read": row.cache_read_per_1m_nanos,
            "cache write": row.cache_write_per_1m_nanos,
            "1h cache write": row.cache_write_1h_per_1m_nanos,
        },
        cost_nanos=row.cost_nanos, hold_nanos=row.hold_nanos,
        cache_write_1h_tokens=row.cache_write_1h_tokens,
    )  # fmt: skip
    return detail if row.advisor_model is None else _with_advisor(detail, row)


def _with_advisor(detail: RequestDetail, row: UsageRecord) -> RequestDetail:
    """The detail of a row whose call consulted an advisor model, with its part (its columns
    are nullable: NULL read as 0)."""
    names = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
    tokens = [int(getattr(row, f"advisor_{name}") or 0) for name in names]
    prices = {"input": "input", "output": "output", "cache read": "cache_read",
              "cache write": "cache_write", "1h cache write": "cache_write_1h"}  # fmt: skip
    return replace(
        detail,
        advisor_model=row.advisor_model,
        advisor_tokens=(tokens[0], tokens[1], tokens[2], tokens[3]),
        advisor_cache_write_1h_tokens=int(row.advisor_cache_write_1h_tokens or 0),
        advisor_prices_per_1m_nanos={
            shown: int(getattr(row, f"advisor_{n}_per_1m_nanos") or 0)
            for shown, n in prices.items()
        },
    )


def _error_text(row: UsageRecord) -> str:
    fields = UsageRecord._meta.fields
    for name in _ERROR_TEXT_FIELDS:
        if name in fields:
            return str(getattr(row, name) or "")
    return ""
