"""The admin dashboard's only door into codelace_box: reads as plain view objects, writes only
through the same feature functions the CLI and the HTTP API call.

Every database call runs on one dedicated thread with its own SQLite connection (`run`), so the
UI never blocks on the disk and never holds a transaction: each call is one short read or one
feature function's own IMMEDIATE transaction, safe while `serve` runs on the same WAL file.
Errors are `CodelaceError`s whose messages are written for people: screens show them as they are.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import ParamSpec, TypeVar

from admin_tui.service_checks import check_adjustment, parse_token_cap
from admin_tui.views import (
    KeyRow,
    LedgerRow,
    ModelForm,
    ModelRow,
    ProviderKeyRow,
    ProviderRow,
    UserRow,
)
from codelace_box.accounts import keys as api_keys
from codelace_box.accounts import users as accounts
from codelace_box.billing import credits, ledger
from codelace_box.catalog import keycheck, models
from codelace_box.catalog import providers as catalog
from codelace_box.catalog.keycheck import KeyCheckResult
from codelace_box.config import Config, ensure_secret_key
from codelace_box.crypto import decrypt_secret
from codelace_box.db.core import close_database, open_database, utcnow, write_transaction
from codelace_box.db.migrate import migrate
from codelace_box.db.models import ProviderKey
from codelace_box.errors import CodelaceError, Conflict, InvalidRequest, NotFound
from codelace_box.money import format_usd, usd_text
from codelace_box.providers import PROVIDER_KINDS
from codelace_box.reports import payments as reports
from codelace_box.reports import traffic as stats
from codelace_box.reports.payments import PaymentRow
from codelace_box.reports.traffic import RequestRow, UsageTotals, WindowStats

__all__ = [
    "PROVIDER_KINDS",
    "AdminServices",
    "CodelaceError",
    "Config",
    "InvalidRequest",
    "KeyCheckResult",
    "KeyRow",
    "LedgerRow",
    "ModelForm",
    "ModelRow",
    "PaymentRow",
    "ProviderKeyRow",
    "ProviderRow",
    "RequestRow",
    "UserRow",
    "check_adjustment",
    "format_usd",
    "usd_text",
]

P = ParamSpec("P")
T = TypeVar("T")
LIST_LIMIT = 200
USERS_SHOWN = 1000  # rows of the users table; a search reaches the others
DAY_FIGURES_TTL_SEC = 30.0


@dataclass(frozen=True)
class UserDetail:
    user: UserRow
    keys: list[KeyRow]
    ledger: list[LedgerRow]
    usage: UsageTotals
    requests: list[RequestRow]
    payments: list[PaymentRow]


@dataclass(frozen=True)
class Dashboard:
    now: datetime
    hour: WindowStats
    day: WindowStats
    revenue_hour_nanos: int
    revenue_day_nanos: int
    revenue_total_nanos: int
    pending_payments: int
    requests_per_minute: list[int]
    users_total: int
    users_disabled: int
    failing_keys: int


@dataclass(frozen=True)
class _OlderPart:
    """The cached part of the 24-hour window before the last hour, and when it was read."""

    at: float
    until: datetime
    stats: WindowStats
    user_ids: frozenset[int]


@dataclass(frozen=True)
class _KeyTarget:
    kind: str
    base_url: str
    api_key: str = field(repr=False)


class AdminServices:
    """Queries and actions of the dashboard; call the sync methods through `run`."""

    def __init__(self, config: Config, clock: Callable[[], datetime] | None = None) -> None:
        self.config = config
        self.now = clock or utcnow
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="admin-db")
        self._opened = False
        self.created_database = False  # True when opening made a new, empty database file
        self._day_cache: _OlderPart | None = None

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a method (or any function) on the database thread and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(self._call, fn, *args, **kwargs))

    def _call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        if not self._opened:
            database = self.config.database
            self.created_database = not database.is_postgres and not Path(database.path).exists()
            migrate(open_database(self.config.database.target))
            self._opened = True
        return fn(*args, **kwargs)

    def shutdown(self) -> None:
        """Close the database connection and stop the database thread."""
        if self._opened:
            self._executor.submit(close_database).result()
        self._executor.shutdown(wait=True)

    # -- dashboard ------------------------------------------------------------------------

    def dashboard(self) -> Dashboard:
        now = self.now()
        hour, day = now - timedelta(hours=1), now - timedelta(days=1)
        users_total, users_disabled = stats.user_counts()
        return Dashboard(
            now=now,
            hour=stats.window_stats(hour),
            day=self._day_stats(day, hour),
            revenue_hour_nanos=reports.revenue_nanos(hour),
            revenue_day_nanos=reports.revenue_nanos(day),
            revenue_total_nanos=reports.revenue_nanos(),
            pending_payments=reports.pending_payments(),
            requests_per_minute=stats.requests_per_minute(now, 60),
            users_total=users_total,
            users_disabled=users_disabled,
            failing_keys=sum(p.failing_keys for p in self.providers()),
        )

    def _day_stats(self, since: datetime, hour: datetime) -> WindowStats:
        """The 24-hour figures: the part older than the last hour (a large scan, repeated at
        most every DAY_FIGURES_TTL_SEC next to a busy server) plus everything after it, read
        live, so the day never lags behind the hour."""
        cached = self._day_cache
        if cached is None or time.monotonic() - cached.at >= DAY_FIGURES_TTL_SEC:
            cached = self._day_cache = _OlderPart(
                time.monotonic(),
                hour,
                stats.window_stats(since, hour),
                frozenset(stats.active_user_ids(since, hour)),
            )
        recent = stats.window_stats(cached.until)
        active = cached.user_ids | stats.active_user_ids(cached.until)
        return stats.combine(cached.stats, recent, len(active))

    def requests(self, search: str = "", limit: int = LIST_LIMIT) -> list[RequestRow]:
        return stats.recent_requests(limit, search)

    def payments(self, search: str = "", limit: int = LIST_LIMIT) -> list[PaymentRow]:
        return reports.list_payments(limit, search)

    # -- users ----------------------------------------------------------------------------

    def users(self, search: str = "", limit: int = USERS_SHOWN) -> list[UserRow]:
        summaries = accounts.list_users(search, limit)
        seen = stats.last_activity([s.user.id for s in summaries])
        return [_user_row(s.user, s.request_count, s.active_keys, seen) for s in summaries]

    def count_users(self) -> int:
        """How many accounts there are."""
        return stats.user_counts()[0]

    def user_detail(self, user_id: int) -> UserDetail:
        user = accounts.get_user_by_id(user_id)
        keys = api_keys.list_keys(user.id)
        usage = stats.usage_totals(user.id)
        seen = stats.last_activity([user.id])
        return UserDetail(
            user=_user_row(user, usage.requests, len(keys), seen),
            keys=[KeyRow(k.uuid, k.key_prefix, k.name, k.created_at, k.last_used_at) for k in keys],
            ledger=[
                LedgerRow(e.id, e.amount_nanos, e.kind, e.reason, e.created_at)
                for e in ledger.entries_for(user.id, LIST_LIMIT)
            ],
            usage=usage,
            requests=stats.recent_requests(LIST_LIMIT, user_id=user.id),
            payments=reports.list_payments(LIST_LIMIT, user_id=user.id),
        )

    def create_user(self, email: str) -> UserRow:
        """Create an account (it may then sign in under invite-only signup)."""
        return _user_row(accounts.create_user(email, created_by_admin=True), 0, 0, {})

    def set_user_active(self, email: str, active: bool) -> None:
        accounts.set_user_status(email, "active" if active else "disabled")

    def adjust_balance(self, email: str, amount_usd: str, reason: str) -> int:
        """Add (or remove, negative) credit through the ledger; the new balance."""
        user, _ = credits.adjust_balance(email, amount_usd, reason)
        return int(user.balance_nanos)

    def revoke_key(self, key_uuid: str) -> None:
        api_keys.revoke_key(key_uuid)

    # -- models ---------------------------------------------------------------------------

    def models(self) -> list[ModelRow]:
        return [
            ModelRow(
                m.id,
                m.provider.name,
                m.upstream_model,
                m.input_per_1m_nanos,
                m.output_per_1m_nanos,
                m.max_output_tokens,
                bool(m.enabled),
                m.cache_read_per_1m_nanos,
                m.cache_write_per_1m_nanos,
                m.cache_write_1h_per_1m_nanos,
            )
            for m in models.list_models()
        ]

    def save_model(self, form: ModelForm, *, new: bool) -> str:
        """Add a model (refusing an id already in the catalog) or change one; its id."""
        model_id = form.model_id.strip()
        if new and model_id in {m.id for m in models.list_models()}:
            raise Conflict(
                f"model {model_id} is already in the catalog: edit it instead",
                code="model_exists",
            )
        models.set_model(
            model_id,
            form.input_per_1m.strip(),
            form.output_per_1m.strip(),
            provider=form.provider.strip() or None,
            upstream_model=form.upstream_model.strip() or None,
            max_output_tokens=parse_token_cap(form.max_output_tokens),
            cache_prices=models.CachePrices(
                form.cache_read_per_1m.strip() or None,
                form.cache_write_per_1m.strip() or None,
                form.cache_write_1h_per_1m.strip() or None,
            ),
        )
        return model_id

    def set_model_enabled(self, model_id: str, enabled: bool) -> None:
        models.set_model_enabled(model_id, enabled)

    # -- providers ------------------------------------------------------------------------

    def providers(self) -> list[ProviderRow]:
        return [
            ProviderRow(
                p.id,
                p.name,
                p.kind,
                p.base_url,
                bool(p.enabled),
                [_key_row(k, self._shown_reason(k)) for k in catalog.provider_keys(p.id)],
            )
            for p in catalog.list_providers()
        ]

    def _shown_reason(self, key: ProviderKey) -> str:
        """Why a key failed, the key itself masked out (an upstream may echo it in a 401)."""
        if not key.failure_reason:
            return ""
        try:
            plain = decrypt_secret(self._secret(), key.key_encrypted)
        except CodelaceError:  # stored under another server secret: it cannot be masked
            return "(not shown: the key cannot be decrypted to mask it in the reason)"
        return keycheck.redact(str(key.failure_reason), plain)

    def add_provider(self, name: str, kind: str, base_url: str, key: str) -> None:
        catalog.add_provider(name.strip(), kind, self._secret(), key, base_url.strip())

    def add_provider_key(self, provider: str, key: str) -> str:
        """Add a key to a provider's rotation; its masked hint."""
        return str(catalog.add_provider_key(provider, self._secret(), key).key_hint)

    def rotate_key(self, provider: str, old_key_id: int, key: str) -> str:
        """Replace a key: the new one joins the rotation and the old one leaves, atomically."""
        secret = self._secret()
        with write_transaction():
            added = catalog.add_provider_key(provider, secret, key)
            catalog.set_key_enabled(old_key_id, False)
        return str(added.key_hint)

    def set_key_enabled(self, key_id: int, enabled: bool) -> None:
        catalog.set_key_enabled(key_id, enabled)

    def set_provider_enabled(self, name: str, enabled: bool) -> None:
        catalog.set_provider_enabled(name, enabled)

    def _key_target(self, key_id: int) -> _KeyTarget:
        for provider in catalog.list_providers():
            for key in catalog.provider_keys(provider.id):
                if key.id == key_id:
                    base = provider.base_url or catalog.default_base_url(provider.kind)
                    plain = decrypt_secret(self._secret(), key.key_encrypted)
                    return _KeyTarget(provider.kind, base, plain)
        raise NotFound(f"no provider key with id {key_id}", code="provider_key_not_found")

    async def test_key(self, key_id: int) -> KeyCheckResult:
        """Ask the upstream whether it accepts a stored key (the key never leaves this call)."""
        target = await self.run(self._key_target, key_id)
        return await keycheck.check_key(
            target.kind,
            target.base_url,
            target.api_key,
            timeout_sec=self.config.gateway.connect_timeout_sec + 10,
        )

    def _secret(self) -> str:
        return ensure_secret_key(self.config)


def _user_row(
    user: accounts.User, requests: int, active_keys: int, seen: dict[int, datetime]
) -> UserRow:
    marks = [m for m in (user.last_seen_at, seen.get(user.id)) if m is not None]
    return UserRow(
        id=user.id,
        email=user.email,
        status=user.status,
        balance_nanos=user.balance_nanos,
        held_nanos=user.held_nanos,
        requests=requests,
        active_keys=active_keys,
        last_seen=max(marks) if marks else None,
        created_at=user.created_at,
    )


def _key_row(key: ProviderKey, reason: str) -> ProviderKeyRow:
    return ProviderKeyRow(
        key.id,
        key.key_hint,
        bool(key.enabled),
        bool(key.failing),
        reason,
        key.created_at,
        key.last_failed_at,
    )
