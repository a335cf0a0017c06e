"""The admin dashboard's only door into codelace_box: reads as plain view objects, writes only
through the same feature functions the CLI and the HTTP API call.

Every database call runs on one dedicated thread with its own connection (`run`, a DbThread
of db/offload.py), so the UI never blocks on the disk and never holds a transaction: each call
is one short read or one feature function's own IMMEDIATE transaction, safe while `serve` runs
on the same WAL file.
Errors are `CodelaceError`s whose messages are written for people: screens show them as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import ParamSpec, TypeVar

from admin_tui.service_audit import audited as _audited
from admin_tui.service_audit import provider_key_change, states
from admin_tui.service_checks import (
    check_adjustment,
    key_limit_fields,
    parse_token_cap,
    user_limit_fields,
)
from admin_tui.views import (
    KeyLimitsForm,
    KeyRow,
    LedgerRow,
    ModelForm,
    ModelRow,
    ProviderKeyRow,
    ProviderRow,
    UserRow,
)
from codelace_box.accounts import keys as api_keys
from codelace_box.accounts import limits
from codelace_box.accounts import users as accounts
from codelace_box.billing import credits, ledger
from codelace_box.catalog import aliases, keycheck, models
from codelace_box.catalog import providers as catalog
from codelace_box.catalog.keycheck import KeyCheckResult
from codelace_box.config import Config, ensure_secret_key
from codelace_box.crypto import decrypt_secret
from codelace_box.db.core import open_database, utcnow
from codelace_box.db.migrate import migrate
from codelace_box.db.models import ProviderKey
from codelace_box.db.offload import DbThread
from codelace_box.errors import CodelaceError, Conflict, InvalidRequest, NotFound
from codelace_box.money import format_usd, usd_text
from codelace_box.providers import PROVIDER_KINDS
from codelace_box.reports import payments as reports
from codelace_box.reports import traffic as stats
from codelace_box.reports.payments import PaymentRow
from codelace_box.reports.traffic import RequestRow, UsageTotals, WindowStats

__all__ = [
    "PROVIDER_KINDS", "AdminServices", "CodelaceError", "Config", "InvalidRequest",
    "KeyCheckResult", "KeyLimitsForm", "KeyRow", "LedgerRow", "ModelForm", "ModelRow",
    "PaymentRow", "ProviderKeyRow", "ProviderRow", "RequestRow", "UserRow", "check_adjustment",
    "format_usd", "usd_text",
]  # fmt: skip

P = ParamSpec("P")
T = TypeVar("T")
LIST_LIMIT = 200
USERS_SHOWN = 1000  # rows of the users table; a search reaches the others


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
class _KeyTarget:
    kind: str
    base_url: str
    api_key: str = field(repr=False)


class AdminServices:
    """Queries and actions of the dashboard; call the sync methods through `run`."""

    def __init__(self, config: Config, clock: Callable[[], datetime] | None = None) -> None:
        self.config = config
        self.now = clock or utcnow
        self._thread = DbThread("admin-db")
        self._opened = False
        self.created_database = False  # True when opening made a new, empty database file

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a method (or any function) on the database thread and await its result."""
        return await self._thread.run(partial(self._call, fn, *args, **kwargs))

    def _call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        if not self._opened:
            database = self.config.database
            self.created_database = not database.is_postgres and not Path(database.path).exists()
            migrate(open_database(self.config.database.target))
            self._opened = True
        return fn(*args, **kwargs)

    def shutdown(self) -> None:
        """Close the database connection and stop the database thread."""
        self._thread.stop()

    # -- dashboard ------------------------------------------------------------------------

    def dashboard(self) -> Dashboard:
        now = self.now()
        hour, day = now - timedelta(hours=1), now - timedelta(days=1)
        users_total, users_disabled = stats.user_counts()
        return Dashboard(
            now=now,
            hour=stats.window_stats(hour),
            day=stats.window_stats(day),
            revenue_hour_nanos=reports.revenue_nanos(hour),
            revenue_day_nanos=reports.revenue_nanos(day),
            revenue_total_nanos=reports.revenue_nanos(),
            pending_payments=reports.pending_payments(),
            requests_per_minute=stats.requests_per_minute(now, 60),
            users_total=users_total,
            users_disabled=users_disabled,
            failing_keys=sum(p.failing_keys for p in self.providers()),
        )

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
            keys=[_api_key_row(k) for k in keys],
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
        with _audited("users create", email, lambda: states.user(email)):
            user = accounts.create_user(email, created_by_admin=True)
        return _user_row(user, 0, 0, {})

    def set_user_active(self, email: str, active: bool) -> None:
        command = "users enable" if active else "users disable"
        with _audited(command, email, lambda: states.user(email)):
            accounts.set_user_status(email, "active" if active else "disabled")

    def adjust_balance(self, email: str, amount_usd: str, reason: str) -> int:
        """Add (or remove, negative) credit through the ledger; the new balance."""
        with _audited("credit", email, lambda: states.user(email)) as change:
            user, _ = credits.adjust_balance(email, amount_usd, reason)
            after = states.user(email) or {}
            change.set_after(after | {"amount_usd": amount_usd.strip(), "reason": reason})
        return int(user.balance_nanos)

    def revoke_key(self, key_uuid: str) -> None:
        with _audited("keys revoke", key_uuid, lambda: states.api_key(key_uuid)):
            api_keys.revoke_key(key_uuid)

    def set_key_limits(self, key_uuid: str, form: KeyLimitsForm) -> KeyRow:
        """Replace a key's limits with the form's (blank: none); checked like the API's."""
        fields = key_limit_fields(form)
        with _audited("keys update", key_uuid, lambda: states.api_key(key_uuid)):
            return _api_key_row(api_keys.update_key(key_uuid, fields, relative=True))

    def set_user_limits(self, email: str, rpm: str, concurrent: str) -> None:
        """Set an account's requests per minute and in flight (blank: the [limits] default)."""
        fields = user_limit_fields(rpm, concurrent)
        with _audited("users limits", email, lambda: states.user(email)):
            limits.set_user_limits(accounts.get_user(email), fields)

    def limit_defaults(self) -> tuple[int, int]:
        """The `[limits]` defaults: (rpm, max_concurrent); 0 is unlimited."""
        return self.config.limits.rpm, self.config.limits.max_concurrent

    # -- models ---------------------------------------------------------------------------

    def models(self) -> list[ModelRow]:
        routed: dict[str, list[str]] = {}
        for name, target in aliases.list_aliases().items():
            routed.setdefault(target, []).append(name)
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
                tuple(routed.get(m.id, ())),
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
        with _audited("models set", model_id, lambda: states.model(model_id)):
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
        command = "models enable" if enabled else "models disable"
        with _audited(command, model_id, lambda: states.model(model_id)):
            models.set_model_enabled(model_id, enabled)

    def set_alias(self, name: str, model_id: str) -> str:
        """Route the bare name `name` to a model (moving it if it routed elsewhere); the name."""
        return str(aliases.set_alias(name.strip(), model_id).name)

    def remove_alias(self, name: str) -> None:
        aliases.remove_alias(name)

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
        name, secret = name.strip(), self._secret()
        with _audited("providers add", name, lambda: states.provider(name)):
            catalog.add_provider(name, kind, secret, key, base_url.strip())

    def add_provider_key(self, provider: str, key: str) -> str:
        """Add a key to a provider's rotation; its masked hint."""
        secret = self._secret()
        with _audited("providers key-add", provider, lambda: states.provider(provider)):
            return str(catalog.add_provider_key(provider, secret, key).key_hint)

    def rotate_key(self, provider: str, old_key_id: int, key: str) -> str:
        """Replace a key: the new one joins the rotation and the old one leaves, atomically."""
        secret = self._secret()
        with _audited("providers key-rotate", provider, lambda: states.provider(provider)):
            added = catalog.add_provider_key(provider, secret, key)
            catalog.set_key_enabled(old_key_id, False)
        return str(added.key_hint)

    def set_key_enabled(self, key_id: int, enabled: bool) -> None:
        with provider_key_change("enable" if enabled else "disable", key_id):
            catalog.set_key_enabled(key_id, enabled)

    def set_provider_enabled(self, name: str, enabled: bool) -> None:
        command = "providers enable" if enabled else "providers disable"
        with _audited(command, name, lambda: states.provider(name)):
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
        rpm=user.rpm,
        max_concurrent=user.max_concurrent,
    )


def _api_key_row(key: accounts.ApiKey) -> KeyRow:
    allowed = limits.allowed_model_list(key)
    return KeyRow(
        key.uuid, key.key_prefix, key.name, key.created_at, key.last_used_at,
        limits.spent_in_period(key), key.limit_nanos, key.limit_reset, key.expires_at,
        None if allowed is None else tuple(allowed),
    )  # fmt: skip


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
