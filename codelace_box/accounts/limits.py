"""Budgets and limits: what a key may spend per period, until when it works, which models it
may call and whether it may manage the account's keys (`can_manage_keys`), and how many
requests per minute and at once an account may make.

This module owns the rules and their checked input (the HTTP API, the CLI and the dashboard
all hand their raw values to `parse_key_limits` / `set_user_limits`: a bad value is a 400
naming the field, and nothing changes). Admission enforces them (gateway/admission.py): the
cap is checked against `api_key.spent_nanos` (charged since `period_start`) plus
`api_key.held_nanos` (the key's open holds) in the same transaction as the hold.

Periods are UTC: a daily one starts at 00:00, a weekly one on Monday 00:00, a monthly one on
the 1st at 00:00; a key without reset has one period that never ends. A period that is over is
rolled over lazily, at the key's next admission or settlement (and shown as 0 spent before).
A reset changed mid-period counts what the key spent in the new current period, from its
history (`period_spend`: its days since the period began, or its whole life without reset), as
OpenRouter shows a key's usage for the period its limit counts; the old period's figure is not
carried over.

Only a key with a budget (a cap or a reset) has its held_nanos and spent_nanos kept by its
requests; the requests of a key without one leave its row alone (the common case: no statement
on it), and what it spent in its one period is its running total (key_usage.cost_nanos, kept by
every settlement) minus `usage_base_nanos` (0 for a budget cleared since spend is counted from
history; a key cleared before keeps the base it got then). Setting or clearing a budget moves a
key from one way to the other in one transaction that no admission or settlement of any
process interleaves with (`hotpath.one_writer_with_requests`), and that is why it is exact:
- a budget set: the spend in its period (`period_spend`) becomes spent_nanos, and every open
  hold of the key is marked counted on its row (`hold.key_held`) and summed into held_nanos. A
  request admitted before settles after on the key's row (lowering held_nanos, adding its charge
  to spent_nanos); one admitted after finds the budget in its own transaction (admit_in).
- a budget cleared: base = total minus the spend in its period (the total: base 0). Holds
  counted on the row still settle there (held_nanos stays the sum of such holds); their charges
  reach the total as well, which is what counts from then on.
A charge settled before the change is in the total it reads; one after it is counted by the
hold's mark: never both, never neither.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from codelace_box.catalog.models import find_model
from codelace_box.db import hotpath
from codelace_box.db.core import (
    Tx,
    connection,
    day_of,
    db_time,
    durable,
    iso_to_utc,
    parse_time,
    query_all,
    utcnow,
    write_transaction,
)
from codelace_box.db.models import ApiKey, ModelAlias, User
from codelace_box.errors import InvalidRequest
from codelace_box.money import (
    NANOS_PER_USD,
    PLAIN_USD_TAKEN,
    AmountTooLarge,
    is_plain_usd,
    usd_to_nanos,
)

RESETS = ("daily", "weekly", "monthly")
MAX_LIMIT_USD = 1_000_000_000
MAX_LIMIT_NANOS = MAX_LIMIT_USD * NANOS_PER_USD
MAX_RPM = 1_000_000
MAX_CONCURRENT = 100_000
MAX_ALLOWED_MODELS = 200
RPM_WINDOW_SEC = 60
KEY_LIMIT_FIELDS = ("limit_usd", "limit_reset", "expires_at", "allowed_models", "can_manage_keys")
# What an operator types to clear a limit (the CLI's options and the dashboard's key form)
CLEAR_WORDS = ("none", "null", "never", "all")
# ...but not a key's model list: "none" there reads as "no model", the opposite of clearing it
MODELS_REFUSED_WORDS = ("none", "never")
MODELS_REFUSED = (
    "is refused: it would allow every model; name the models the key may call, or 'all' for "
    "every model (to stop a key, revoke it)"
)
_RELATIVE = re.compile(r"^(\d{1,6})([hd])$", re.ASCII)


def period_start(reset: str | None, now: datetime) -> datetime | None:
    """The start of the current period of a reset (None: no reset, the period never ends)."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if reset == "daily":
        return day
    if reset == "weekly":
        return day - timedelta(days=day.weekday())
    if reset == "monthly":
        return day.replace(day=1)
    return None


def period_starts(now: datetime) -> tuple[str, str, str]:
    """The current period's start for a daily, a weekly and a monthly reset, as stored (on the
    request path: they change only at midnight UTC, so each day's are worked out once)."""
    return _period_starts_of(now.date())


@lru_cache(maxsize=4)
def _period_starts_of(day: date) -> tuple[str, str, str]:
    midnight = datetime(day.year, day.month, day.day)
    return tuple(db_time(period_start(reset, midnight) or midnight) for reset in RESETS)  # type: ignore[return-value]


BUDGET_FIELDS = frozenset({"limit_nanos", "limit_reset"})  # a key's budget, on its row


def has_budget(limit_nanos: int | None, limit_reset: str | None) -> bool:
    """Whether a key with this cap and reset has its row kept by its requests."""
    return limit_nanos is not None or limit_reset is not None


def spent_in_period(key: ApiKey, now: datetime | None = None) -> int:
    """What the key spent in its current period (0 when the stored period is over)."""
    if not has_budget(key.limit_nanos, key.limit_reset):
        return hotpath.key_usage_cost(connection(), key.id) - int(key.usage_base_nanos)
    start = period_start(key.limit_reset, now or utcnow())
    stored = key.period_start
    if start is not None and (stored is None or parse_time(stored) < start):
        return 0
    return int(key.spent_nanos)


def allowed_model_list(key: ApiKey) -> list[str] | None:
    """The catalog ids a key may call (None: every model)."""
    return parse_allowed(key.allowed_models)


def parse_allowed(stored: str | None) -> list[str] | None:
    """The stored allow-list back to a list (None: every model)."""
    if stored is None:
        return None
    names = json.loads(stored)
    return [str(name) for name in names] if isinstance(names, list) else []


_DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _date_note(text: str, now: datetime) -> str:
    """For a date alone: that it means the day's first moment, and the time of its end (today's
    date, meant as "until tonight", read "in the past" with nothing to say why), while that end
    is still ahead (a long-past date's end is just as past)."""
    if not _DATE_ONLY.fullmatch(text) or text < now.date().isoformat():
        return ""
    return f" (a date means its 00:00 UTC; the end of that day is {text}T23:59:59Z)"


def _bad(field: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{field}: {message}", code="invalid_limit", param=field)


def parse_limit_usd(value: Any, field: str = "limit_usd") -> int | None:
    """A spend cap in USD (a number, or its plain decimal text) to nano-USD; None clears it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise _bad(field, f"must be {PLAIN_USD_TAKEN}, or null for no cap")
    if isinstance(value, str) and not is_plain_usd(value):
        raise _bad(
            field, f"must be {PLAIN_USD_TAKEN}, or null for no cap; got {value.strip()[:40]!r}"
        )
    try:
        nanos = usd_to_nanos(value.strip() if isinstance(value, str) else value)
    except AmountTooLarge:
        nanos = MAX_LIMIT_NANOS + 1
    except ValueError as exc:
        raise _bad(field, f"must be an exact USD amount (at most 9 decimals): {exc}") from None
    if nanos < 0:
        raise _bad(field, "must not be negative")
    if nanos > MAX_LIMIT_NANOS:
        raise _bad(field, f"must be at most {MAX_LIMIT_USD} USD")
    return nanos


def parse_reset(value: Any, field: str = "limit_reset") -> str | None:
    """daily, weekly or monthly; None (or "none", as the SPEC lists it): never."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None
    if not isinstance(value, str) or value.strip().lower() not in RESETS:
        raise _bad(field, 'must be "daily", "weekly", "monthly", "none" or null')
    return value.strip().lower()


def parse_expiry(
    value: Any, now: datetime, field: str = "expires_at", *, relative: bool = False
) -> datetime | None:
    """A moment in the future (ISO 8601; no offset: UTC; with `relative`, also `7d` or `12h`
    from now) as naive UTC; None: never expires."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        example = (now + timedelta(days=365)).date().isoformat()  # a fixed one would go stale
        raise _bad(field, f"must be an ISO 8601 time such as {example}T23:59:59Z, or null")
    text = value.strip()
    match = _RELATIVE.match(text) if relative else None
    if match:
        amount, unit = int(match[1]), match[2]
        moment = now + (timedelta(hours=amount) if unit == "h" else timedelta(days=amount))
    else:
        moment = _iso_moment(text, field)
    if moment <= now:
        raise _bad(field, f"{text} is in the past{_date_note(text, now)}")
    return moment


def _iso_moment(text: str, field: str) -> datetime:
    try:
        return iso_to_utc(text)
    except ValueError:
        raise _bad(field, f"cannot read {text[:40]!r}: give an ISO 8601 time") from None
    except OverflowError:  # 9999-12-31T23:00-05:00 is past year 9999 in UTC
        raise _bad(field, f"{text[:40]} is out of range (years 1 to 9999, UTC)") from None


def parse_manage_flag(value: Any, field: str = "can_manage_keys") -> bool:
    """Whether a key may manage the account's keys: true or false (null is no answer here:
    nothing to clear, so it is refused like any other non-boolean)."""
    if not isinstance(value, bool):
        raise _bad(field, "must be true or false")
    return value


def parse_models(value: Any, field: str = "allowed_models") -> str | None:
    """Model ids or aliases to the stored allow-list (catalog ids, JSON); None: every model.
    An alias is stored as the catalog id it routes to now."""
    if value is None:
        return None
    if not isinstance(value, list) or not value or len(value) > MAX_ALLOWED_MODELS:
        raise _bad(field, f"must be a list of 1 to {MAX_ALLOWED_MODELS} model ids, or null")
    ids: list[str] = []
    for name in value:
        if not isinstance(name, str) or not name.strip():
            raise _bad(field, "every entry must be a model id such as openai/gpt-5.4")
        model_id = _catalog_id(name.strip())
        if model_id is None:
            raise _bad(field, f"no model or alias {name.strip()[:200]!r} in the catalog")
        if model_id not in ids:
            ids.append(model_id)
    return json.dumps(ids)


def _catalog_id(name: str) -> str | None:
    if not name.isprintable():  # no id or alias is (and PostgreSQL refuses a NUL: a 500)
        return None
    found = find_model(name)  # the id in either Unicode form, the one typed first
    if found is not None:
        return str(found.id)
    alias = ModelAlias.get_or_none(ModelAlias.name == name)
    return None if alias is None else str(alias.model.id)


def parse_key_limits(
    fields: Mapping[str, Any], now: datetime | None = None, *, relative: bool = False
) -> dict[str, Any]:
    """The checked columns of the limit fields present in `fields` (absent: left out; None:
    cleared). Raises a 400 naming the first bad field."""
    now = now or utcnow()
    changes: dict[str, Any] = {}
    if "limit_usd" in fields:
        changes["limit_nanos"] = parse_limit_usd(fields["limit_usd"])
    if "limit_reset" in fields:
        changes["limit_reset"] = parse_reset(fields["limit_reset"])
    if "expires_at" in fields:
        changes["expires_at"] = parse_expiry(fields["expires_at"], now, relative=relative)
    if "allowed_models" in fields:
        changes["allowed_models"] = parse_models(fields["allowed_models"])
    if "can_manage_keys" in fields:
        changes["can_manage_keys"] = parse_manage_flag(fields["can_manage_keys"])
    return changes


def new_key_period(changes: Mapping[str, Any], now: datetime) -> datetime:
    """The period a new key starts in."""
    return period_start(changes.get("limit_reset"), now) or now


def apply_key_limits(key: ApiKey, changes: Mapping[str, Any]) -> ApiKey:
    """Store checked limit changes (and a name) on a key; a new reset (or a budget set or
    cleared) counts what the key spent in the new current period, from its history. Committed
    with an fsync (`durable()`): a limit lowered or an expiry brought forward, once answered,
    must not be undone by a crash of the database right after."""
    if not changes:
        return key
    values = dict(changes)
    with durable(), write_transaction() as tx:
        if BUDGET_FIELDS & values.keys():  # a rename or an expiry waits for no request
            hotpath.one_writer_with_requests(tx)
        now = utcnow()  # once the requests' lock is held: a wait across midnight counts
        current = ApiKey.get_by_id(key.id)
        values.update(_budget_changes(tx, current, values, now))
        ApiKey.update(**values).where(ApiKey.id == key.id).execute()
    return ApiKey.get_by_id(key.id)


def _budget_changes(
    tx: Tx, current: ApiKey, values: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """The money columns of a key whose reset or budget changes (see the module doc)."""
    before = has_budget(current.limit_nanos, current.limit_reset)
    reset = values.get("limit_reset", current.limit_reset)
    after = has_budget(values.get("limit_nanos", current.limit_nanos), reset)
    changes: dict[str, Any] = {}
    if after and not before:
        changes["held_nanos"] = hotpath.holds_to_key(tx, current.id)
    if reset != current.limit_reset or after != before:
        spent = period_spend(tx, current, reset, now)
        changes["spent_nanos"] = spent
        if reset != current.limit_reset:
            changes["period_start"] = new_key_period(values, now)
        if before and not after:
            changes["usage_base_nanos"] = hotpath.key_usage_cost(tx, current.id) - spent
    return changes


KEY_SPEND_SINCE_SQL = (  # its account's days from the period's start: a range of the primary key
    "SELECT COALESCE(SUM(cost_nanos), 0) FROM key_day_usage "
    "WHERE user_id = ? AND day >= ? AND api_key_id = ?"
)


def period_spend(tx: Tx, key: ApiKey, reset: str | None, now: datetime) -> int:
    """What the key spent in the current period of `reset`, from its history: its days since
    the period began (periods begin at midnight UTC, so whole days), or, without reset (one
    period that never ends), its running total."""
    start = period_start(reset, now)
    if start is None:
        return hotpath.key_usage_cost(tx, key.id)
    params = (key.user_id, day_of(start), key.id)  # type: ignore[attr-defined]  # peewee's FK id
    return int(tx.execute(KEY_SPEND_SINCE_SQL, params).fetchone()[0])


def parse_account_limit(value: Any, field: str, maximum: int) -> int | None:
    """An account's rpm or max_concurrent: 0 (unlimited) to `maximum`; None or "default": the
    `[limits]` default."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "default"):
        return None
    text = value.strip() if isinstance(value, str) else ""
    if text.isascii() and text.isdigit() and len(text) <= len(str(maximum)):
        value = int(text)  # ASCII only: int() reads "٣" as 3, fails on "²" and 4301 digits
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise _bad(field, f"must be a whole number from 0 (unlimited) to {maximum}, or default")
    return value


def set_user_limits(user: User, fields: Mapping[str, Any]) -> User:
    """Set an account's `rpm` and/or `max_concurrent` (absent: unchanged). Committed with an
    fsync (`durable()`): limits lowered, once answered, must not be undone by a crash of the
    database right after."""
    changes: dict[str, int | None] = {}
    if "rpm" in fields:
        changes["rpm"] = parse_account_limit(fields["rpm"], "rpm", MAX_RPM)
    if "max_concurrent" in fields:
        changes["max_concurrent"] = parse_account_limit(
            fields["max_concurrent"], "max_concurrent", MAX_CONCURRENT
        )
    if changes:
        with durable():
            User.update(**changes).where(User.id == user.id).execute()
    return User.get_by_id(user.id)


def effective(value: int | None, default: int) -> int:
    """An account's limit: its own value, else the `[limits]` default (0: unlimited)."""
    return default if value is None else int(value)


# What a key's held_nanos must be: its holds counted on its row, and every open hold of a key
# with a budget (such a hold not counted there is a mismatch too).
_KEY_HOLDS = (
    "COALESCE(SUM(CASE WHEN h.key_held = 1 OR k.limit_nanos IS NOT NULL OR k.limit_reset IS "
    "NOT NULL THEN h.amount_nanos ELSE 0 END), 0)"
)
_KEY_HELD_SQL = (
    f"SELECT k.uuid, k.held_nanos, {_KEY_HOLDS} FROM api_key k LEFT JOIN hold h ON "
    "h.api_key_id = k.id GROUP BY k.id, k.uuid, k.held_nanos, k.limit_nanos, k.limit_reset "
    f"HAVING k.held_nanos != {_KEY_HOLDS}"
)


def key_hold_mismatches() -> list[tuple[str, int, int]]:
    """Keys whose held_nanos is not the sum of the open holds counted on their row: (uuid,
    held, holds)."""
    return [(str(u), int(h), int(s)) for u, h, s in query_all(_KEY_HELD_SQL)]
