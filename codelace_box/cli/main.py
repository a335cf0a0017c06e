"""The `codelace-box` command line: parse, call a feature function or the server, print.

No logic lives here. Every command exits 0 on success; otherwise it prints one line on stderr
and exits 1 (a CodelaceError or anything unexpected) or 2 (a usage mistake: a missing or
malformed argument or option). `--json` on list/show prints JSON.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from codelace_box import __version__
from codelace_box.cli.audit import audit
from codelace_box.cli.catalog import providers
from codelace_box.cli.group import CodelaceGroup, let_go_of_a_lost_terminal
from codelace_box.cli.manage import MANAGE_COMMANDS
from codelace_box.cli.models import models
from codelace_box.cli.support import (
    CliState,
    ListenHost,
    WholeNumber,
    done,
    pass_state,
    say_notes_now,
)
from codelace_box.cli.upkeep import (
    a_file_not_a_dash,
    build_lines,
    echo_lines,
    migrate_status,
    migrated_line,
    newer_schema,
    restore_command,
)
from codelace_box.cli.usage import usage
from codelace_box.config import Config
from codelace_box.config.loading import NAME_A_FILE
from codelace_box.errors import EX_CONFIG, CodelaceError, ConfigError, NotReady


@click.group(cls=CodelaceGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, message="%(prog)s %(version)s", prog_name="codelace-box")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    callback=lambda _ctx, _param, value: _not_empty(value),
    help="Config file (else $CODELACE_CONFIG, else ./codelace.toml, else built-in defaults).",
)
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """codelace-box: a self-hosted LLM gateway for a team."""
    ctx.obj = CliState(config_path)


def _not_empty(path: str | None) -> str | None:
    """An empty --config (`--config "$UNSET"`) is a mistake, not a request for the defaults;
    `-` (standard input, as tools take it) is no file either (`init` wrote one named `-`)."""
    if path is not None and not path.strip():
        raise click.BadParameter("an empty path; leave --config out to use the defaults")
    if path == "-":
        raise click.BadParameter(f"'-' (standard input) is not taken: {NAME_A_FILE}")
    return path


@main.command()
@click.option("--host", type=ListenHost(), help="Listen address (server.host).")
@click.option("--port", type=WholeNumber(1, 65535), help="Listen port (server.port).")
@click.option("--workers", type=WholeNumber(1, 64), help="Server processes (server.workers).")
@pass_state
def serve(state: CliState, host: str | None, port: int | None, workers: int | None) -> None:
    """Migrate the database if needed, then serve HTTP."""
    from dataclasses import replace

    from codelace_box.launcher import hold_stops_until_serving

    hold_stops_until_serving()  # first: the import below alone takes half a second
    from codelace_box.server import serve as run_server

    try:
        config = state.config()
        server = config.server
        server = replace(
            server,
            host=host if host is not None else server.host,
            port=port if port is not None else server.port,
            workers=workers if workers is not None else server.workers,
        )
        run_server(replace(config, server=server))
    except ConfigError as exc:  # a restart cannot mend it: systemd told so (README's unit)
        if not isinstance(exc, NotReady):
            exc.exit_status = EX_CONFIG
        raise
    finally:
        let_go_of_a_lost_terminal()


@main.command()
@pass_state
def admin(state: CliState) -> None:
    """Open the terminal dashboard on the same database."""
    import sys

    from admin_tui.app import run_admin

    state.config()  # a bad config is named first
    if not (sys.stdin.isatty() and sys.__stderr__ is not None and sys.__stderr__.isatty()):
        raise CodelaceError(  # Textual reads keys on stdin and draws on stderr
            "admin needs an interactive terminal (over ssh: ssh -t HOST codelace-box admin)"
        )
    state.database()
    say_notes_now()  # a database made now: said before the dashboard takes the terminal
    run_admin(state.config())


@main.command()
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@pass_state
def init(state: CliState, force: bool) -> None:
    """Write a commented codelace.toml with a fresh server secret (or the one in use)."""
    from codelace_box.config import write_initial_config

    target = state.init_target()
    try:
        existed = target.exists()
    except OSError as exc:  # a folder this user may not enter (root's /etc/codelace, 700)
        raise ConfigError(f"{target}: cannot write: {exc.strerror}") from None
    if existed and not force:
        raise CodelaceError(f"{target} already exists (use --force to overwrite)")
    reused = write_initial_config(target)
    done("init")
    how = f"kept the server secret in use from {reused}" if reused else "a new server.secret_key"
    click.echo(f"wrote {target} ({how}; mode 600, keep it private)")
    _record_init(target, existed, reused)
    click.echo(  # quoted: a path with a space is pasted into a shell whole
        f"next: edit it if you like, then run: codelace-box --config {shlex.quote(str(target))} "
        "serve"
    )


def _record_init(target: Path, existed: bool, reused: str | None) -> None:
    """The audit entry of `init`, in the database the written config names if it has one (a
    first `init` creates none); a database it cannot reach is said on stderr, and the file
    stays written."""
    from codelace_box.audit import record_init
    from codelace_box.db.postgres import without_passwords

    url = ""
    try:
        database = CliState(str(target)).config().database
        url = database.url
        if database.is_postgres or Path(database.path).exists():
            record_init(database.target, str(target.resolve()), existed, reused)
    except Exception as exc:  # the config is written: that is what init does
        why = without_passwords(str(exc), url) if url else str(exc)
        click.echo(f"note: init not recorded in the audit log: {why}", err=True)


@main.command("migrate")
@click.option("--status", is_flag=True, help="Show the current and pending versions; apply none.")
@pass_state
def migrate_command(state: CliState, status: bool) -> None:
    """Apply pending schema migrations and exit."""
    from codelace_box.db.migrate import current_version

    if status:
        state.hold_database()
        lines, current = migrate_status(state.config())
        echo_lines(lines)
        if refused := newer_schema(current):
            raise refused
        return
    db, applied = state.migrated_database()
    if applied:
        done("migrate")
    click.echo(migrated_line(applied, current_version(db)))


@main.command()
@click.argument("path", type=click.Path(dir_okay=False), callback=a_file_not_a_dash)
@pass_state
def backup(state: CliState, path: str) -> None:
    """Write a consistent copy of the database to PATH, safe while serve runs."""
    from codelace_box.audit import record_backup
    from codelace_box.db.backup import backup_database
    from codelace_box.doctor import open_existing_database

    config = state.config()
    if config.database.is_postgres:
        raise CodelaceError(
            "backup copies a SQLite file; on PostgreSQL use pg_dump "
            "(e.g. pg_dump -Fc -f codelace.dump DATABASE_URL)"
        )
    source = config.database.path
    state.hold_database()
    open_existing_database(config).close()
    pages = backup_database(source, path)
    record_backup(config.database.target, path, pages)
    done("backup")
    click.echo(f"backed up {pages} pages to {path}")


@main.command()
@pass_state
def doctor(state: CliState) -> None:
    """Check every balance against its ledger, the schema version and the scheduled backups;
    exit 1 on a mismatch."""
    from codelace_box.billing.setup_report import stripe_report
    from codelace_box.config import existing_secret_key
    from codelace_box.doctor import backup_line, check_database, open_existing_database

    config = state.config()
    state.hold_database()
    db = open_existing_database(config)
    version, problems = check_database(db, existing_secret_key(config), config.stripe)
    backups, failed = backup_line(db, config)
    problems += [backups] if failed else []
    for line in problems:
        click.echo(f"MISMATCH {line}")
    if not problems:
        click.echo(f"ok: schema version {version}, every balance matches its ledger")
    for line in stripe_report(config):  # settings: said either way, never the exit status
        click.echo(line)
    if problems:
        raise CodelaceError(f"doctor found {len(problems)} problem(s)")
    click.echo(backups)


@main.group("db")
def db_group() -> None:
    """Move the database between engines (SQLite, PostgreSQL)."""


@db_group.command("copy")
@click.option("--to", "to_url", required=True, help="sqlite:///PATH or postgresql://... (empty)")
@pass_state
def db_copy(state: CliState, to_url: str) -> None:
    """Copy every row of the configured database into an empty database at URL."""
    from codelace_box.audit import copy_recorder
    from codelace_box.db.copy import LateCtrlC, copy_database
    from codelace_box.db.postgres import redacted
    from codelace_box.doctor import open_existing_database

    config = state.config()
    _check_copy_target(to_url)
    to_url = _absolute_sqlite_url(to_url, config)
    state.hold_database()
    open_existing_database(config).close()
    late = LateCtrlC()  # Ctrl-C once the copy can no longer be undone: said, not an error
    try:
        recorded = copy_recorder(redacted(config.database.target), redacted(to_url))
        counts = copy_database(config.database.target, to_url, recorded, late)
        done("db copy")
        rows = f"{sum(counts.values())} rows in {len(counts)} tables"
        click.echo(f"copied {rows} to {redacted(to_url)}")
        click.echo("point database.url at it (and set server.secret_key), then run doctor")
        if late.seen:
            click.echo("Ctrl-C came after the copy was complete: it is whole, nothing undone")
        if late.in_flight:
            calls = "1 call was" if late.in_flight == 1 else f"{late.in_flight} calls were"
            click.echo(  # holds of a box still serving, or of one that was killed
                f"warning: {calls} in flight at the source: their holds are not copied. If a "
                "serve still runs on it, those calls settle there, not in this copy: stop "
                "every serve and copy again for a copy that misses nothing. If none runs, they "
                "are holds a box left when it stopped without settling (a crash, a kill): "
                "those calls are not charged, the copy misses nothing, and the source's next "
                "serve releases them",
                err=True,
            )
    finally:
        late.restore()


def _absolute_sqlite_url(url: str, config: Config) -> str:
    """A relative `sqlite:///PATH` names a file in the working folder, as any path on the
    command line does; database.url reads the same text beside the config file. The copy is
    made and printed under its absolute path, so the URL shown works in database.url (and
    never under a name of a SQLite source's own -wal/-shm/-journal)."""
    import os

    from codelace_box.db.backup import refuse_side_file_of

    if not url.startswith("sqlite:///"):
        return url
    path = os.path.abspath(url.removeprefix("sqlite:///"))
    if not config.database.is_postgres:
        refuse_side_file_of(Path(path), Path(config.database.path))
    return "sqlite:///" + path


def _check_copy_target(url: str) -> None:
    """`--to` is a URL as database.url takes it: anything else was opened as a SQLite file
    named by it (`mysql://h/db`, `postgresql+psycopg://...` made folders `mysql:/h`), and
    `sqlite:///:memory:` copied into memory that was gone when the command ended."""
    import re

    from codelace_box.config.values import DATABASE_URL
    from codelace_box.db.postgres import redacted

    path = url.removeprefix("sqlite:///")
    if not url or not re.fullmatch(DATABASE_URL[0], url) or path == ":memory:":
        raise click.BadParameter(
            f"expected sqlite:///PATH (a file) or postgresql://user:password@host:port/db, "
            f"got {redacted(url)!r}",
            param_hint="'--to'",
        )


@main.command()
@click.option("--verbose", is_flag=True, help="Also the schema version and build details.")
@pass_state
def version(state: CliState, verbose: bool) -> None:
    """Print the version (one line; --verbose: schema version and build details)."""
    if not verbose:
        click.echo(f"codelace-box {__version__}")
        return
    try:
        echo_lines(build_lines(state.config()))
    except CodelaceError as exc:  # a bad config does not hide the build details, nor itself
        echo_lines(build_lines(None, config_trouble=exc.message))


for _command in [*MANAGE_COMMANDS, providers, models, usage, audit, restore_command]:
    main.add_command(_command)
