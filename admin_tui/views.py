"""Plain view objects the screens show: rows of users, keys, ledger entries, models and
providers, and what the operator typed into a model form. No codelace_box import, no secrets:
a provider key appears only as its masked hint, an API key only as its prefix."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class UserRow:
    id: int
    email: str
    status: str
    balance_nanos: int
    held_nanos: int
    requests: int
    active_keys: int
    last_seen: datetime | None
    created_at: datetime
    rpm: int | None = None  # the account's own limits; None: the [limits] default
    max_concurrent: int | None = None
    uuid: str = ""  # the account's id as the access log, the API and the CLI show it
    shown_email: str = ""  # `email` as a person reads it (an IDN domain in Unicode)


@dataclass(frozen=True)
class KeyRow:
    id: str  # the key's UUID, its id everywhere outside the database
    prefix: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    spent_nanos: int = 0  # in the current period
    limit_nanos: int | None = None  # the spend cap per period; None: none
    limit_reset: str | None = None  # daily | weekly | monthly; None: never
    expires_at: datetime | None = None
    allowed_models: tuple[str, ...] | None = None  # None: every model
    can_manage_keys: bool = True  # may create, change and revoke the account's keys (API)


@dataclass(frozen=True)
class KeyLimitsForm:
    """What the operator typed for a key's limits; every field is raw text (blank: none)."""

    limit_usd: str = ""
    limit_reset: str = "never"
    expires: str = ""  # ISO 8601, or 30d / 12h from now
    models: str = ""  # comma-separated ids or aliases
    manage_keys: str = "yes"  # yes | no: whether the key may manage the account's keys
    name: str | None = None  # the key's name; None: unchanged


@dataclass(frozen=True)
class LedgerRow:
    id: int
    amount_nanos: int
    kind: str
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class ModelRow:
    id: str
    provider: str
    upstream_model: str
    input_per_1m_nanos: int
    output_per_1m_nanos: int
    max_output_tokens: int | None
    enabled: bool
    cache_read_per_1m_nanos: int | None = None  # None: unset (billed at the input price)
    cache_write_per_1m_nanos: int | None = None
    cache_write_1h_per_1m_nanos: int | None = None  # None: unset (the cache write price)
    aliases: tuple[str, ...] = ()  # bare names routed to this model, sorted
    context_tokens: int | None = None  # None: gateway.default_context_tokens
    provider_enabled: bool = True  # a provider turned off keeps its models from being served

    @property
    def on_text(self) -> str:
        """The On cell: an enabled model its provider (turned off) keeps from serving says so,
        as `models list` does."""
        if not self.enabled:
            return "no"
        return "yes" if self.provider_enabled else "no (provider off)"


@dataclass(frozen=True)
class ProviderKeyRow:
    """A provider key as the operator may see it: its masked hint, never the key."""

    id: int
    hint: str
    enabled: bool
    failing: bool
    failure_reason: str
    created_at: datetime
    last_failed_at: datetime | None
    parked: bool = False  # refused on calls though its probe works: back only by the operator


@dataclass(frozen=True)
class ProviderRow:
    id: int
    name: str
    kind: str
    base_url: str
    enabled: bool
    keys: list[ProviderKeyRow] = field(default_factory=list)
    allowed_fields: tuple[str, ...] = ()  # billed fields let through (--allow-field)
    responses_api: bool = False  # serves /v1/responses itself (--responses-api)

    @property
    def failing_keys(self) -> int:
        """Keys in rotation that fail; one taken out (disabled, rotated) is dealt with."""
        return sum(1 for key in self.keys if key.failing and key.enabled)


@dataclass(frozen=True)
class ModelForm:
    """What the operator typed for a model; every field is raw text."""

    model_id: str
    input_per_1m: str
    output_per_1m: str
    provider: str = ""
    upstream_model: str = ""
    max_output_tokens: str = ""
    cache_read_per_1m: str = ""  # blank: the input price
    cache_write_per_1m: str = ""
    cache_write_1h_per_1m: str = ""
    context_tokens: str = ""  # blank: gateway.default_context_tokens
