"""`doctor`'s checks of the running usage totals and rollups (db/totals.py) against what they
summarize: each account's spend against its ledger's usage debits (which retention never
deletes), each account's days against its total, and the per-day and per-minute rollups
against the accounts' totals. Read-only; one line per problem, naming the account.
"""

from __future__ import annotations

from codelace_box.db.core import query_all
from codelace_box.db.totals import COLUMNS
from codelace_box.money import format_usd

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
_DAYS_SQL = f"SELECT user_id, {_SUMS} FROM account_day_usage GROUP BY user_id"
_ACCOUNTS_SQL = f"SELECT a.user_id, u.uuid, u.email, {', '.join('a.' + c for c in _FIGURES)} "
_ACCOUNTS_SQL += 'FROM account_usage a JOIN "user" u ON u.id = a.user_id'
_ROLLUP_SQL = f"SELECT {_SUMS} FROM usage_rollup WHERE period = ?"
_ALL_ACCOUNTS_SQL = f"SELECT {_SUMS} FROM account_usage"


def totals_problems() -> list[str]:
    """Every way the usage totals and rollups disagree with the ledger or with each other."""
    return _spent_vs_ledger() + _days_vs_accounts() + _rollups_vs_accounts()


def _spent_vs_ledger() -> list[str]:
    """An account's total spend is what its ledger debited for usage, to the nano-dollar."""
    return [
        f"account {email} (id {uuid}): usage total {format_usd(int(spent), 9)} != ledger "
        f"usage debits {format_usd(int(debited), 9)}"
        for uuid, email, spent, debited in query_all(_SPENT_VS_LEDGER_SQL)
    ]


def _days_vs_accounts() -> list[str]:
    """An account's days (the portal's daily spend) add up to its running total."""
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


def _rollups_vs_accounts() -> list[str]:
    """The per-day and per-minute rollups (the dashboard's figures) add up to the accounts'."""
    accounts = tuple(int(v) for v in query_all(_ALL_ACCOUNTS_SQL)[0])
    problems = []
    for period in ("day", "minute"):
        summed = tuple(int(v) for v in query_all(_ROLLUP_SQL, (period,))[0])
        if summed != accounts:
            problems.append(
                f"usage rollups per {period}: {_differences(accounts, summed, 'rollups')}"
            )
    return problems


def _differences(kept: tuple[int, ...], summed: tuple[int, ...], what: str) -> str:
    """'requests 3 != 2 in its days, ...': each figure that differs."""
    return ", ".join(
        f"{name} {a} != {b} in the {what}"
        for name, a, b in zip(_FIGURES, kept, summed, strict=True)
        if a != b
    )
