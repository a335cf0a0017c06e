"""`codelace-box usage ...`: the usage history for the operator's own analysis."""

from __future__ import annotations

import sys

import click

from codelace_box.cli.support import CliState, pass_state


@click.group()
def usage() -> None:
    """Usage history: export it."""


@usage.command("export")
@click.option("--since", help="From this moment: an ISO date (UTC) or 24h / 7d back from now.")
@click.option("--user", "email", help="Only this account's requests (its email).")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), required=True, help="Output format."
)
@pass_state
def export(state: CliState, since: str | None, email: str | None, fmt: str) -> None:
    """Write every usage row (oldest first) to stdout, as CSV or JSON lines, streamed."""
    from codelace_box.accounts.users import get_user
    from codelace_box.reports.history import export_records, parse_since, write_export

    start = parse_since(since) if since is not None else None
    state.database()
    user_id = get_user(email).id if email is not None else None
    write_export(export_records(start, user_id), sys.stdout, fmt)
