"""`doctor`'s checks of the running usage totals and rollups (db/totals.py) against what they
summarize: each account's spend against its ledger's usage debits (which retention never
deletes), each call's usage row against its debit, each account's days (the sums of its keys'
days) against its total, each key's days against the key's total, the per-day rollups against
the accounts' totals, and the per-minute rollups against the day rollups of their days
(retention prunes old minutes: the days it keeps whole must match exactly, an older one may
only fall short). Read-only; one line per problem, naming the account (and the key).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from codelace_box.db.core import aggregate, query_all, utcnow
from codelace_box.db.totals import COLUMNS
from codelace_box.money import format_usd
from codelace_box.reports.history import MINUTES_KEPT_DAYS

_FIGURES = COLUMNS  # the running figures every total and rollup keeps
_SUMS = ", ".join(f"COALESCE(SUM({c}), 0)" for c in _FIGURES)

_SPENT_VS_LEDGER_SQL = """
SELECT u.uuid, u.email, COALESCE(a.cost_nanos, 0), COALESCE(-l.total, 0)
FROM "user" u
LEFT JOIN account_usage a ON a.user_id = u.id
LEFT JOIN (SELECT user_id, SUM(amount_nanos) AS total FROM ledger_entry WHERE kind = 'usage'
           GROUP BY user_id) l ON l.user_id = u.id
WHERE COALESCE(a.cost_nanos, 0) != COALESCE(-l.total, 0)
ORDER BY u.id
"""
# Each call's usage row against its ledger debit (`usage:<request id>`, written in the same
# transaction, none for a free call); a debit whose row retention deleted is not looked at. How
# many differ (one pass, nothing held: a window's count over them, `COUNT(*) OVER ()`, held
# every differing call in SQLite's memory, 40-70 MB a million), then, only when some do, the
# first CALLS_LISTED of them.
_CALLS_DIFFERING = """
FROM usage_record r
LEFT JOIN ledger_entry l ON l.idempotency_key = 'usage:' || r.request_id AND l.kind = 'usage'
WHERE r.cost_nanos != COALESCE(-l.amount_nanos, 0) OR l.user_id != r.user_id
"""
_CALLS_VS_LEDGER_SQL = f"""
SELECT c.request_id, u.uuid, u.email, c.cost_nanos, c.debited, c.same_account
FROM (SELECT r.id, r.request_id, r.user_id, r.cost_nanos, -l.amount_nanos AS debited,
             l.user_id = r.user_id AS same_account {_CALLS_DIFFERING}
      ORDER BY r.id
      LIMIT ?) c
JOIN "user" u ON u.id = c.user_id
ORDER BY c.id
"""
_CALLS_DIFFERING_SQL = f"SELECT COUNT(*) {_CALLS_DIFFERING}"
CALLS_LISTED = 20
_DAYS_SQL = f"SELECT user_id, {_SUMS} FROM key_day_usage GROUP BY user_id"
_KEY_DAYS_SQL = f"SELECT user_id, api_key_id, {_SUMS} FROM key_day_usage "
_KEY_DAYS_SQL += "GROUP BY user_id, api_key_id"
_KEYS_SQL = "SELECT k.user_id, k.api_key_id, a.uuid, u.email, "
_KEYS_SQL += ", ".join(f"k.{c}" for c in _FIGURES)
_KEYS_SQL += " FROM key_usage k JOIN api_key a ON a.id = k.api_key_id "
_KEYS_SQL += 'JOIN "user" u ON u.id = k.user_id ORDER BY k.api_key_id'
NOT_KNOWN = -1  # key_day_usage's key of what migration 19 found without its key (db/models.py)
_ACCOUNTS_SQL = f"SELECT a.user_id, u.uuid, u.email, {', '.join('a.' + c for c in _FIGURES)} "
_ACCOUNTS_SQL += 'FROM account_usage a JOIN "user" u ON u.id = a.user_id'
_ROLLUP_SQL = f"SELECT {_SUMS} FROM usage_rollup WHERE period = ?"
_ALL_ACCOUNTS_SQL = f"SELECT {_SUMS} FROM account_usage"
_MINUTE_DAYS_SQL = (
    f"SELECT substr(bucket, 1, 10), model, {_SUMS} FROM usage_rollup WHERE period = 'minute' "
    "GROUP BY substr(bucket, 1, 10), model"
)
_DAY_MODELS_SQL = f"SELECT bucket, model, {', '.join(_FIGURES)} FROM usage_rollup "
_DAY_MODELS_SQL += "WHERE period = 'day' AND bucket >= ?"


def totals_problems(today: date | None = None) -> list[str]:
    """Every way the usage totals and rollups disagree with the ledger or with each other
    (the minutes kept whole are those of the days before `today`, by default the clock's)."""
    return (
        _spent_vs_ledger()
        + _calls_vs_ledger()
        + _days_vs_accounts()
        + _days_vs_keys()
        + _rollups_vs_accounts()
        + _minutes_vs_days(today)
    )


def _spent_vs_ledger() -> list[str]:
    """An account's total spend is what its ledger debited for usage, to the nano-dollar."""
    return [
        f"account {email} (id {uuid}): usage total {format_usd(int(spent), 9)} != ledger "
        f"usage debits {format_usd(int(debited), 9)}"
        for uuid, email, spent, debited in query_all(_SPENT_VS_LEDGER_SQL)
    ]


def _calls_vs_ledger() -> list[str]:
    """A call's usage row cost is what the ledger debited for it, to the nano-dollar, from
    the account of the row (sums that agree can hide debits moved between calls)."""
    differing = int(aggregate(_CALLS_DIFFERING_SQL)[0])
    rows = query_all(_CALLS_VS_LEDGER_SQL, (CALLS_LISTED,)) if differing else []
    problems = []
    for request_id, uuid, email, cost, debited, same_account in rows:
        debit = "none" if debited is None else format_usd(int(debited), 9)
        elsewhere = "" if debited is None or same_account else " (of another account)"
        problems.append(
            f"call {request_id} of account {email} (id {uuid}): usage row cost "
            f"{format_usd(int(cost), 9)} != ledger debit {debit}{elsewhere}"
        )
    if (more := differing - len(rows)) > 0:
        problems.append(f"{more} more call(s) whose usage row cost differs from its ledger debit")
    return problems


def _days_vs_accounts() -> list[str]:
    """An account's days (its keys' days: the portal's daily spend, `usage report --by user`
    and `--by key`) add up to its running total."""
    days = {int(row[0]): tuple(int(v) for v in row[1:]) for row in query_all(_DAYS_SQL)}
    problems = []
    for row in query_all(_ACCOUNTS_SQL):
        user_id, uuid, email, *figures = row
        kept = tuple(int(v) for v in figures)
        summed = days.pop(int(user_id), (0,) * len(_FIGURES))
        if kept != summed:
            problems.append(f"account {email} (id {uuid}): {_differences(kept, summed, 'days')}")
    problems += [f"account id {user_id}: days counted without a total" for user_id in days]
    return problems


def _days_vs_keys() -> list[str]:
    """A key's days (`usage report --by key`) add up to its running total: the days of two
    keys of one account swapped keep the account's sums right. They may fall short of it by
    what migration 19 counted under key -1 (rows retention had deleted: the key's total holds
    them, its days do not), at most that much over the account's keys; never exceed it."""
    days = {(int(r[0]), int(r[1])): _ints(r[2:]) for r in query_all(_KEY_DAYS_SQL)}
    zero = (0,) * len(_FIGURES)
    problems: list[str] = []
    short: dict[int, list[str]] = {}  # an account's keys whose days fall short of their totals
    missing: dict[int, tuple[int, ...]] = {}  # by how much, summed over the account's keys
    for user_id, key_id, uuid, email, *figures in query_all(_KEYS_SQL):
        kept, summed = _ints(figures), days.pop((int(user_id), int(key_id)), zero)
        if kept == summed:
            continue
        line = f"API key {uuid} of account {email}: {_differences(kept, summed, 'days')}"
        if any(s > k for k, s in zip(kept, summed, strict=True)):
            problems.append(line)
            continue
        short.setdefault(user_id, []).append(line)
        missing[user_id] = _plus(missing.get(user_id, zero), _minus(kept, summed))
    for user_id, lines in short.items():
        not_known = days.get((user_id, NOT_KNOWN), zero)
        if any(m > n for m, n in zip(missing[user_id], not_known, strict=True)):
            problems += lines
    return problems + [
        f"API key id {key}: days counted without a total" for _, key in days if key > 0
    ]


def _plus(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def _minus(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(x - y for x, y in zip(a, b, strict=True))


def _rollups_vs_accounts() -> list[str]:
    """The per-day rollups (the report's and dashboard's figures) add up to the accounts'."""
    accounts = tuple(int(v) for v in query_all(_ALL_ACCOUNTS_SQL)[0])
    summed = tuple(int(v) for v in query_all(_ROLLUP_SQL, ("day",))[0])
    if summed == accounts:
        return []
    return [f"usage rollups per day: {_differences(accounts, summed, 'rollups')}"]


def _minutes_vs_days(today: date | None = None) -> list[str]:
    """Each model's minutes of a day add up to its day rollup: exactly for the days pruning
    keeps whole (the last MINUTES_KEPT_DAYS before today, and today), at most for older ones
    (pruned, perhaps half-way: a pass deletes the oldest first, in batches)."""
    kept = (today or utcnow().date()).toordinal() - MINUTES_KEPT_DAYS
    horizon = date.fromordinal(kept).isoformat()
    minutes = {(str(r[0]), str(r[1])): _ints(r[2:]) for r in query_all(_MINUTE_DAYS_SQL)}
    oldest = min([horizon, *(day for day, _ in minutes)])
    days = {(str(r[0]), str(r[1])): _ints(r[2:]) for r in query_all(_DAY_MODELS_SQL, (oldest,))}
    zero = (0,) * len(_FIGURES)
    problems = []
    for day, model in sorted(set(minutes) | set(days)):
        summed, counted = minutes.get((day, model), zero), days.get((day, model), zero)
        pruned = day < horizon and all(a <= b for a, b in zip(summed, counted, strict=True))
        if summed != counted and not pruned:
            problems.append(
                f"usage rollups per minute of {day} ({model}): "
                f"{_differences(counted, summed, 'minute rollups')}"
            )
    return problems


def _ints(row: Sequence[Any]) -> tuple[int, ...]:
    return tuple(int(v) for v in row)


def _differences(kept: tuple[int, ...], summed: tuple[int, ...], what: str) -> str:
    """'requests 3 != 2 in its days, ...': each figure that differs."""
    return ", ".join(
        f"{name} {a} != {b} in the {what}"
        for name, a, b in zip(_FIGURES, kept, summed, strict=True)
        if a != b
    )
