"""What a settled call is charged and leaves behind: its tokens, the prices they are charged at,
and the values of its usage row (gateway/metering.py settles it).

Money is integer nano-USD: every (token count, price per 1M tokens) pair of a call is summed and
rounded up once (money.priced_tokens_nanos). An Anthropic advisor model's tokens (parts of the
call's counts) are priced at that model's own catalog prices (or dearer, if a call reports
another model: gateway/advisor.py), the rest at the requested model's; the usage row records
both sets of prices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from codelace_box.gateway.advisor import AdvisorCharge
from codelace_box.money import priced_tokens_nanos


@dataclass
class CacheTokens:
    """A call's prompt-cache tokens (parts of its input tokens) and their prices."""

    read_tokens: int = 0
    write_tokens: int = 0  # 1-hour writes included
    write_1h_tokens: int = 0
    read_per_1m_nanos: int = 0
    write_per_1m_nanos: int = 0
    write_1h_per_1m_nanos: int = 0


@dataclass
class Settlement:
    """Everything a finished request leaves behind."""

    request_id: str
    user_id: int
    key_id: int | None
    model: str
    provider: str
    upstream_model: str
    input_per_1m_nanos: int
    output_per_1m_nanos: int
    input_tokens: int
    output_tokens: int
    status: str  # ok | error | abandoned
    stream: bool
    estimated: bool = False
    error_code: str | None = None
    duration_ms: int = 0
    charge: bool = True  # False: a failed call, it costs nothing
    route: str = "/v1/chat/completions"
    cache: CacheTokens = field(default_factory=CacheTokens)
    upstream_error: str | None = None  # the provider's error message, masked and bounded
    container: tuple[str, str | None] | None = None  # Anthropic's (id, expires_at) answered
    advisor: AdvisorCharge | None = None  # an advisor model's part, at its prices (advisor.py)

    def cost_nanos(self) -> int:
        """The price of the tokens (0 for a failed call): input tokens read from or written to
        the prompt cache at their own prices, the rest at the input price; an advisor model's
        part at the prices its AdvisorCharge names."""
        if not self.charge:
            return 0
        cache = self.cache
        uncached = self.input_tokens - cache.read_tokens - cache.write_tokens
        if self.advisor is not None:
            return self._with_advisor(uncached, self.advisor)
        return priced_tokens_nanos(
            (uncached, self.input_per_1m_nanos),  # (a negative count is priced as none)
            (self.output_tokens, self.output_per_1m_nanos),
            (cache.read_tokens, cache.read_per_1m_nanos),
            (cache.write_tokens - cache.write_1h_tokens, cache.write_per_1m_nanos),
            (cache.write_1h_tokens, cache.write_1h_per_1m_nanos),
        )

    def _with_advisor(self, uncached: int, advisor: AdvisorCharge) -> int:
        """`cost_nanos` of a call an advisor model took part in: its tokens taken out of the
        call's counts and priced at its prices, the rest at the call's, rounded up once."""
        cache, part = self.cache, advisor.tokens
        own_writes = cache.write_tokens - cache.write_1h_tokens
        return priced_tokens_nanos(
            (uncached - part.input_tokens + part.cache_read_tokens + part.cache_write_tokens,
             self.input_per_1m_nanos),
            (self.output_tokens - part.output_tokens, self.output_per_1m_nanos),
            (cache.read_tokens - part.cache_read_tokens, cache.read_per_1m_nanos),
            (own_writes - part.cache_write_tokens + part.cache_write_1h_tokens,
             cache.write_per_1m_nanos),
            (cache.write_1h_tokens - part.cache_write_1h_tokens, cache.write_1h_per_1m_nanos),
            *advisor.priced(),
        )  # fmt: skip


# No model comes near it; the usage sums of millions of rows at it still fit SQLite's 64 bits.
MAX_STORED_TOKENS = 2**40


def stored_count(tokens: int) -> int:
    """A token count as the usage row stores it: an upstream's absurd or negative count must
    not make the settlement fail (that would leave the hold taken and the work unbilled), nor
    later make the usage sums overflow."""
    if tokens < 0:  # (comparisons: min(max()) is two builtin calls, 15x the cost)
        return 0
    return tokens if tokens < MAX_STORED_TOKENS else MAX_STORED_TOKENS


def usage_values(item: Settlement, charged: int, hold: int, now: str) -> tuple[Any, ...]:
    """The usage row's values in the order of db/hotpath.py's statement (an advisor's columns
    only when the call had one)."""
    values = (
        item.request_id,
        item.user_id,
        item.key_id,
        item.model,
        item.provider,
        item.upstream_model,
        stored_count(item.input_tokens),
        stored_count(item.output_tokens),
        item.input_per_1m_nanos,
        item.output_per_1m_nanos,
        charged,
        hold,
        item.status,
        item.error_code,
        int(item.stream),
        int(item.estimated),
        item.duration_ms,
        now,
        item.route,
        stored_count(item.cache.read_tokens),
        stored_count(item.cache.write_tokens),
        stored_count(item.cache.write_1h_tokens),
        item.cache.read_per_1m_nanos,
        item.cache.write_per_1m_nanos,
        item.cache.write_1h_per_1m_nanos,
    )
    return values if item.advisor is None else values + advisor_values(item.advisor)


def advisor_values(advisor: AdvisorCharge) -> tuple[Any, ...]:
    """The usage row's advisor columns: its catalog id, its tokens, its prices."""
    part = advisor.tokens
    return (
        advisor.model,
        stored_count(part.input_tokens),
        stored_count(part.output_tokens),
        stored_count(part.cache_read_tokens),
        stored_count(part.cache_write_tokens),
        stored_count(part.cache_write_1h_tokens),
        advisor.input_per_1m_nanos,
        advisor.output_per_1m_nanos,
        advisor.cache_read_per_1m_nanos,
        advisor.cache_write_per_1m_nanos,
        advisor.cache_write_1h_per_1m_nanos,
    )
