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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import ParamSpec, TypeVar

from admin_tui.catalog_services import CatalogServices, ProviderExtras
from admin_tui.service_audit import audited as _audited
from admin_tui.service_audit import states
from admin_tui.service_checks import (
    check_adjustment,
    key_limit_fields,
    manage_keys_choice,
    moment_text,
    price_jumps,
    unchanged,
    user_limit_fields,
)
from admin_tui.service_echo import quoted_back
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
from codelace_box.audit import migrate_recorded
from codelace_box.billing import credits, ledger
from codelace_box.catalog import keycheck
from codelace_box.catalog.keycheck import KeyCheckResult
from codelace_box.config import Config
from codelace_box.db.core import close_database, open_database, utcnow
from codelace_box.db.failures import is_unavailable, operator_words
from codelace_box.db.migrate import refuse_newer_schema
from codelace_box.db.offload import DbThread
from codelace_box.db.openlock import OpenMarker, file_identity, hold_open
from codelace_box.errors import CodelaceError, InvalidRequest
from codelace_box.money import format_usd, usd_text
from codelace_box.providers import PROVIDER_KINDS
from codelace_box.reports import payments as reports
from codelace_box.reports import traffic as stats
from codelace_box.reports.moments import parse_moment
from codelace_box.reports.payments import PaymentRow
from codelace_box.reports.request_detail import RequestDetail, request_detail
from codelace_box.reports.spend import GROUPINGS, SpendRow
from codelace_box.reports.spend_days import daily_spend_report
from codelace_box.reports.traffic import RequestRow, UsageTotals, WindowStats

__all__ = [
    "GROUPINGS",
    "PROVIDER_KINDS",
    "AdminServices",
    "CodelaceError",
    "Config",
    "InvalidRequest",
    "KeyCheckResult",
    "KeyLimitsForm",
    "KeyRow",
    "LedgerRow",
    "ModelForm",
    "ModelRow",
    "PaymentRow",
    "ProviderExtras",
    "ProviderKeyRow",
    "ProviderRow",
    "RequestDetail",
    "RequestRow",
    "SpendRow",
    "UserRow",
    "check_adjustment",
    "format_usd",
    "moment_text",
    "price_jumps",
    "quoted_back",
    "usd_text",
]

P = ParamSpec("P")
T = TypeVar("T")
Emailed = TypeVar("Emailed", RequestRow, PaymentRow, RequestDetail)
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
    now: datetime  # when it was read (naive UTC): an expiry before it has passed
    cut: frozenset[str] = frozenset()  # of ledger, requests, payments: those with more rows


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


class AdminServices(CatalogServices):
    """Queries and actions of the dashboard; call the sync methods through `run`."""

    def __init__(self, config: Config, clock: Callable[[], datetime] | None = None) -> None:
        self.config = config
        self.now = clock or utcnow
        self._thread = DbThread("admin-db")
        self._opened = False
        self.created_database = False  # True when opening made a new, empty database file
        self._marker = OpenMarker(None)
        self._identity: tuple[int, int] | None = None

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a method (or any function) on the database thread and await its result."""
        return await self._thread.run(partial(self._call, fn, *args, **kwargs))

    def _call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        try:
            return self._open_and_call(fn, *args, **kwargs)
        except Exception as exc:
            url = self.config.database.target if self.config.database.is_postgres else None
            if said := operator_words(exc, url):  # a lock, a full disk: what the CLI says
                if is_unavailable(exc):  # a session lost, a server down: it comes back
                    said += ": nothing was done; the dashboard will try again at its next read"
                raise CodelaceError(said) from exc
            raise

    def _open_and_call(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        path = self.config.database.path
        if not self._opened:
            self._marker = hold_open(path)  # `restore` refuses while the dashboard is open
            database = self.config.database
            self.created_database = not database.is_postgres and not Path(database.path).exists()
            migrate_recorded(open_database(database.target), "admin")
            self._identity = file_identity(path)
            self._opened = True
        elif self._watched(path) and file_identity(path) != self._identity:
            self._reopen(path)
        elif self.config.database.is_postgres:  # SQLite: no migrate while the file is open here
            refuse_newer_schema("nothing was done: quit the dashboard (Ctrl+Q)")
        return fn(*args, **kwargs)

    def _watched(self, path: str) -> bool:
        """Whether the database is a file a restore may replace (on PostgreSQL there is none)."""
        return path != ":memory:" and not self.config.database.is_postgres

    def _reopen(self, path: str) -> None:
        """The database file was replaced under the dashboard (moved or copied over by hand):
        never write into the old, unlinked file. Reopen the new one and refuse this call."""
        close_database()
        if not Path(path).is_file():
            raise CodelaceError(
                f"the database file {path} is gone (moved away?); nothing was done: quit the "
                "dashboard (Ctrl+Q) and start it again once the file is back"
            )
        migrate_recorded(open_database(path), "admin")
        self._identity = file_identity(path)
        raise CodelaceError(
            f"the database file {path} was replaced (a restore?): the dashboard reopened it; "
            "nothing was done: check what is shown now and try again"
        )

    def shutdown(self) -> None:
        """Close the database connection, stop the database thread, let the open mark go."""
        self._thread.stop()
        if self._opened:
            self._marker.release()

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
            failing_keys=sum(p.failing_keys for p in self.providers() if p.enabled),
        )

    def requests(self, search: str = "", limit: int = LIST_LIMIT) -> list[RequestRow]:
        return [_shown(row) for row in stats.recent_requests(limit, search)]

    def request_detail(self, row_id: int) -> RequestDetail:
        """One request in full (by its usage row id)."""
        return _shown(request_detail(row_id))

    def spend(self, by: str, window: str) -> list[SpendRow]:
        """Usage grouped by user, key or model over the last `window` (24h, 7d, 30d; 'all'), as
        `usage report` has it: whole days from the day totals (which retention never deletes),
        the partial days at the edges from the usage rows."""
        since = None if window == "all" else parse_moment(window, self.now())
        return [_shown_group(row, by) for row in daily_spend_report(by, since)]

    def payments(self, search: str = "", limit: int = LIST_LIMIT) -> list[PaymentRow]:
        return [_shown(row) for row in reports.list_payments(limit, search)]

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
        entries = ledger.entries_for(user.id, LIST_LIMIT + 1)  # one more: are there more?
        requests = stats.recent_requests(LIST_LIMIT + 1, user_id=user.id)
        payments = reports.list_payments(LIST_LIMIT + 1, user_id=user.id)
        lengths = {"ledger": len(entries), "requests": len(requests), "payments": len(payments)}
        return UserDetail(
            user=_user_row(user, usage.requests, len(keys), seen),
            keys=[_api_key_row(k) for k in keys],
            ledger=[
                LedgerRow(e.id, e.amount_nanos, e.kind, e.reason, e.created_at)
                for e in entries[:LIST_LIMIT]
            ],
            usage=usage,
            requests=[_shown(r) for r in requests[:LIST_LIMIT]],
            payments=[_shown(p) for p in payments[:LIST_LIMIT]],
            now=self.now(),
            cut=frozenset(name for name, length in lengths.items() if length > LIST_LIMIT),
        )

    def create_user(self, email: str) -> UserRow:
        """Create an account (it may then sign in under invite-only signup)."""
        email = accounts.normalize_email(email)  # the audit's target: the account's email
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
            user, posting = credits.adjust_balance(email, amount_usd, reason)
            after = states.user(email) or {}  # the amount as the balance is written (`1e2`: 100)
            amount = usd_text(posting.entry.amount_nanos)
            change.set_after(after | {"amount_usd": amount, "reason": reason})
        return int(user.balance_nanos)

    def create_key(
        self, user_id: int, name: str, manage_keys: str = "yes", form: KeyLimitsForm | None = None
    ) -> tuple[str, KeyRow]:
        """A new API key for the user: the full key (shown once) and its row; `manage_keys`
        "no": a key that may not manage the account's keys; `form`: its limits (blank: none),
        checked before anything is minted."""
        fields = key_limit_fields(form) if form is not None else {}
        fields = {k: v for k, v in fields.items() if v is not None and k != "name"}
        fields["can_manage_keys"] = manage_keys_choice(manage_keys)
        accounts.require_enabled(accounts.get_user_by_id(user_id), "enable it first: x")
        with _audited("keys create", str(user_id)) as change:
            new = api_keys.create_key(user_id, name.strip(), fields, relative=True)
            change.target = new.key.uuid
            change.set_after(states.api_key(new.key.uuid))
        return new.full_key, _api_key_row(new.key)

    def revoke_key(self, key_uuid: str) -> None:
        with _audited("keys revoke", key_uuid, lambda: states.api_key(key_uuid)):
            api_keys.revoke_key(key_uuid)

    def set_key_limits(
        self, key_uuid: str, form: KeyLimitsForm, shown: KeyRow | None = None
    ) -> KeyRow:
        """Replace a key's limits with the form's (blank: none); checked like the API's.
        `shown`: the key as the form was filled; refused if its limits changed since."""
        fields = key_limit_fields(form, shown)
        with _audited("keys update", key_uuid, lambda: states.api_key(key_uuid)):
            if shown is not None:
                current = _api_key_row(api_keys.find_key(key_uuid))
                unchanged(key_limits(shown), key_limits(current), f"key {shown.prefix}…")
            return _api_key_row(api_keys.update_key(key_uuid, fields, relative=True))

    def set_user_limits(
        self, email: str, rpm: str, concurrent: str, shown: UserRow | None = None
    ) -> None:
        """Set an account's requests per minute and in flight (blank: the [limits] default).
        `shown`: the account as the form was filled; refused if its limits changed since."""
        fields = user_limit_fields(rpm, concurrent)
        with _audited("users limits", email, lambda: states.user(email)):
            user = accounts.get_user(email)
            if shown is not None:
                now = (user.rpm, user.max_concurrent)
                unchanged((shown.rpm, shown.max_concurrent), now, f"{email}'s request limits")
            limits.set_user_limits(user, fields)

    def limit_defaults(self) -> tuple[int, int]:
        """The `[limits]` defaults: (rpm, max_concurrent); 0 is unlimited."""
        return self.config.limits.rpm, self.config.limits.max_concurrent

    async def test_key(self, key_id: int) -> KeyCheckResult:
        """Ask the upstream whether it accepts a stored key (the key never leaves this call)."""
        target = await self.run(self._key_target, key_id)
        timeout = self.config.gateway.connect_timeout_sec + 10
        return await keycheck.check_key(
            target.kind, target.base_url, target.api_key, timeout_sec=timeout
        )


def key_limits(key: KeyRow) -> tuple[object, ...]:
    """What the key form shows of a key (its name and limits)."""
    return (key.name, key.limit_nanos, key.limit_reset, key.expires_at, key.allowed_models,
            key.can_manage_keys)  # fmt: skip


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
        uuid=user.uuid,
        shown_email=accounts.shown_email(user.email),
    )


def _shown(row: Emailed) -> Emailed:
    """A report's row with its user's email as a person reads it (an IDN domain in Unicode:
    accounts/users.py shown_email); only the screens show it, nothing acts on it."""
    return replace(row, email=accounts.shown_email(row.email))


def _shown_group(row: SpendRow, by: str) -> SpendRow:
    """A spend group with its address as a person reads it (an IDN domain in Unicode), as
    `usage report`'s table has it: an account's label, a key's owner ('name (email)')."""
    if by == "user":
        return replace(row, label=accounts.shown_email(row.label))
    name, mark, email = row.detail[:-1].rpartition(" (")
    if by == "key" and mark and row.detail.endswith(")"):
        return replace(row, detail=f"{name}{mark}{accounts.shown_email(email)})")
    return row


def _api_key_row(key: accounts.ApiKey) -> KeyRow:
    allowed = limits.allowed_model_list(key)
    return KeyRow(
        key.uuid, key.key_prefix, key.name, key.created_at, key.last_used_at,
        limits.spent_in_period(key), key.limit_nanos, key.limit_reset, key.expires_at,
        None if allowed is None else tuple(allowed), bool(key.can_manage_keys),
    )  # fmt: skip
