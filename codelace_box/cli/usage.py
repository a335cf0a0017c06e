"""The `usage` commands: who spent what over a time window, and the usage history exported."""

from __future__ import annotations

import io
import sys
from datetime import datetime, timedelta
from typing import Any, TextIO

import click

from codelace_box.cli.limit_options import MOMENT_OPTIONS, named_as_options
from codelace_box.cli.support import CliState, emit, json_option, pass_state, table
from codelace_box.db.core import iso_z
from codelace_box.money import usd_json, usd_text


@click.group()
def usage() -> None:
    """Usage and spend across accounts; the usage history exported."""


@usage.command("report")
@click.option("--since", default=None, help="Start: an ISO date (2026-11-01) or 24h / 7d ago.")
@click.option("--until", default=None, help="End (excluded): an ISO date or 24h / 7d ago.")
@click.option(
    "--by",
    type=click.Choice(["user", "key", "model"]),
    default="user",
    show_default=True,
    help="Group by account, API key or model.",
)
@json_option
@pass_state
def usage_report(
    state: CliState, since: str | None, until: str | None, by: str, as_json: bool
) -> None:
    """Requests, tokens and spend per user, key or model, the biggest spend first."""
    from codelace_box.db.core import utcnow
    from codelace_box.reports.moments import parse_moment
    from codelace_box.reports.spend import totals
    from codelace_box.reports.spend_days import daily_spend_report, days_counted

    state.database()
    now = utcnow()
    with named_as_options(MOMENT_OPTIONS):  # '' is a mistake, as in audit
        start = parse_moment(since, now) if since is not None else None
        end = parse_moment(until, now, option="--until") if until is not None else None
    check_order(start, end)
    rows = daily_spend_report(by, start, end)
    days = state.config().usage.retention_days
    cutoff = retention_cutoff(days, start, now)
    view = {
        "by": by,
        "since": window_edge(start),
        "until": window_edge(end),
        "rows": [row_view(r, by) for r in rows],
        "total": row_view(totals(rows), by),
        "rows_deleted_before": iso_z(cutoff),
        "retention_days": days,
    }
    if cutoff is not None:  # the days counted whatever retention deleted (only then)
        view["whole_days_counted"] = _days_view(days_counted(by, start, end, now.date()))
    emit(view, as_json, render)


def window_edge(moment: datetime | None) -> str | None:
    """A window's edge as shown, to the microsecond when it has one (`24h` always does): cut
    to the second, a report run again with the window it printed counted other rows."""
    if moment is None or not moment.microsecond:
        return iso_z(moment)
    return moment.isoformat(timespec="microseconds") + "Z"


def check_order(start: datetime | None, end: datetime | None) -> None:
    """A window whose --until is not after its --since: one line saying the end is excluded
    (one day written as `--since D --until D` is empty), with the --until that means D."""
    from codelace_box.errors import InvalidRequest

    if start is None or end is None or start < end:
        return
    hint = "the end is excluded"
    if start == end and start == datetime.combine(start.date(), datetime.min.time()):
        hint += (
            f": for the day {start.date()} alone give --until {start.date() + timedelta(days=1)}"
        )
    raise InvalidRequest(f"--since must come before --until ({hint})", param="until")


def _days_view(days: Any) -> dict[str, str] | None:
    """The whole UTC days a report counted from the day totals (retention keeps those)."""
    if days is None:
        return None
    return {"first": days.first.isoformat(), "last": days.last.isoformat()}


def retention_cutoff(days: int, start: datetime | None, now: datetime) -> datetime | None:
    """Before when retention (usage.retention_days) deletes the usage rows, if the window
    starts before then: the report cannot count what is gone (the totals and the ledger
    keep it). None: retention is off, or the window is whole."""
    if days <= 0:
        return None
    cutoff = now - timedelta(days=days)
    return cutoff if start is None or start < cutoff else None


def row_view(row: Any, by: str) -> dict[str, Any]:
    """One group as the CLI shows it (spend in USD, and in nano-USD for exact sums)."""
    view = {
        by: row.label,
        "requests": row.requests,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "spend_usd": usd_json(row.spend_nanos),
        "spend_nanos": row.spend_nanos,  # exact: the rows add up to the total in integers
        "errors": row.errors,
    }
    if by == "key":
        view |= {"key_id": row.key, "key": row.label, "owner": row.detail}
    elif by == "user":
        view["user_id"] = row.key
    return view


def render(view: dict[str, Any]) -> str:
    by = view["by"]
    columns = [by, "requests", "input_tokens", "output_tokens", "spend_usd", "errors"]
    if by == "key":  # the id is what `keys revoke` takes
        columns[1:1] = ["key_id", "owner"]
    total = view["total"] | {by: "TOTAL", "owner": "", "key_id": ""}
    window = f"from {view['since'] or 'the start'} until {view['until'] or 'now'}"
    # the spend from its integer: the USD float is exact only below about $1M
    shown = [_shown_row(row, by) for row in view["rows"]]
    shown.append(total | {"spend_usd": usd_text(total["spend_nanos"])})
    text = f"usage by {by}, {window}\n" + table(shown, columns)
    if view["rows_deleted_before"] is not None:
        text += _retention_note(view)
    return text


def _shown_row(row: dict[str, Any], by: str) -> dict[str, Any]:
    """A group as the table shows it to a person: the spend from its integer, an address's
    IDN domain in Unicode as `users list` shows it (--json keeps the stored form)."""
    from codelace_box.accounts.users import shown_email

    shown = row | {"spend_usd": usd_text(row["spend_nanos"])}
    if by == "user":
        shown["user"] = shown_email(row["user"])
    elif by == "key" and row["owner"].endswith(")"):  # 'name (email)': _with_key_details
        name, mark, email = row["owner"][:-1].rpartition(" (")
        shown["owner"] = f"{name}{mark}{shown_email(email)})" if mark else row["owner"]
    return shown


def _retention_note(view: dict[str, Any]) -> str:
    """What retention took from this report, and what it counted all the same."""
    days = view.get("whole_days_counted")
    note = (
        f"\nnote: usage rows before {view['rows_deleted_before']} are deleted "
        f"(usage.retention_days = {view['retention_days']})"
    )
    if days is None:
        return note + (
            ": this report cannot count them; the totals of `users show` and the ledger still do"
        )
    return note + (
        f": the whole UTC days {days['first']} to {days['last']} are counted from the daily "
        "totals, which retention keeps; the deleted rows of the partial days at the window's "
        "edges are not counted (the totals of `users show` and the ledger still do)"
    )


@usage.command("export")
@click.option("--since", help="From this moment: an ISO date (UTC) or 24h / 7d back from now.")
@click.option("--until", help="Up to this moment (excluded): an ISO date (UTC) or 24h / 7d ago.")
@click.option("--user", "email", help="Only this account's requests (its email or id).")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), required=True, help="Output format."
)
@pass_state
def export(
    state: CliState, since: str | None, until: str | None, email: str | None, fmt: str
) -> None:
    """Write every usage row (oldest first) to stdout, as CSV or JSON lines, streamed."""
    from codelace_box.accounts.users import get_account
    from codelace_box.db.core import utcnow
    from codelace_box.reports.history import export_records, write_export
    from codelace_box.reports.moments import parse_moment

    now = utcnow()
    with named_as_options(MOMENT_OPTIONS):
        start = parse_moment(since, now) if since is not None else None
        end = parse_moment(until, now, option="--until") if until is not None else None
    check_order(start, end)
    state.database()
    user_id = get_account(email).id if email is not None else None
    write_export(export_records(start, user_id, end), utf8_stdout(), fmt)
    _export_retention_note(state.config().usage.retention_days, start, now)


def _export_retention_note(days: int, start: datetime | None, now: datetime) -> None:
    """Say on stderr (stdout is the file) that the window starts before retention deleted
    its rows: an export short of the ledger, without a word, misleads whoever adds it up."""
    cutoff = retention_cutoff(days, start, now)
    if cutoff is not None:
        click.echo(
            f"note: usage rows before {iso_z(cutoff)} are deleted (usage.retention_days = "
            f"{days}): this export cannot hold them; the ledger and `usage report` (from the "
            "daily totals, which retention keeps) still count them",
            err=True,
        )


def utf8_stdout() -> TextIO:
    """Standard output as the export's file format needs it whatever the terminal's encoding:
    UTF-8 (a Latin-1 locale or a Windows redirect in its code page failed at the first name
    in another script) and no newline translation (Windows made the CSV's CRLF a CR CR LF)."""
    stream = sys.stdout
    if stream is None:  # `>&-`: nothing to write the export to (not an "unexpected TypeError")
        from codelace_box.errors import CodelaceError

        raise CodelaceError("standard output is closed: the export has nowhere to go")
    if isinstance(stream, io.TextIOWrapper):
        stream.reconfigure(encoding="utf-8", newline="")
    return stream
