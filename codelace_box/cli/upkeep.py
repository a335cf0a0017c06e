"""Upkeep helpers of the command line: migration status, build details for `version --verbose`."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

import click

from codelace_box import __version__
from codelace_box.config import Config
from codelace_box.errors import CodelaceError


def migrate_status_lines(config: Config) -> list[str]:
    """The schema version of the database and what `migrate` would apply; nothing is written
    (a missing database is not created, nor an empty file made one; a folder in its place, or
    a file in the way of its folder, fails as every command does)."""
    return migrate_status(config)[0]


def migrate_status(config: Config) -> tuple[list[str], int]:
    """`migrate_status_lines`, and the database's schema version (0: no database yet)."""
    from codelace_box.db.core import open_database
    from codelace_box.db.migrate import LATEST_VERSION, MIGRATIONS, migration_status
    from codelace_box.db.sqlite_file import empty_sqlite_file, nothing_at

    path = config.database.path
    if not config.database.is_postgres and path != ":memory:":
        empty = empty_sqlite_file(path)  # opened, it would be written: a database of nothing
        if empty or nothing_at(path):
            pending = [f"pending: {v} {m.NAME}" for v, m in MIGRATIONS]  # as with a database
            what = ": an empty file of 0 bytes" if empty else ""
            made_by = "the first serve, migrate or management command makes it"
            where = os.path.abspath(path)
            return [f"no database at {where} yet{what} ({made_by})", *pending], 0
    current, pending_list, unknown = migration_status(open_database(config.database.target))
    lines = [f"schema version {current} (this codelace-box knows up to {LATEST_VERSION})"]
    if unknown:
        lines.append(
            f"newer than this codelace-box: {', '.join(map(str, unknown))} (upgrade it first)"
        )
    if pending_list:
        lines += [f"pending: {v} {name}" for v, name in pending_list]
        lines += _still_serving()
    else:
        lines.append("pending: none")
    return lines, current


def migrated_line(applied: list[int], now: int) -> str:
    """What `migrate` says it did: the migrations it applied, from which schema version to
    which (each by its one-line name), or that there was nothing to do."""
    from codelace_box.db.migrate import MIGRATIONS

    if not applied:
        return f"already at schema version {now}, nothing to do"
    if min(applied) == 1:
        return f"set up a new database at schema version {now} (all {len(applied)} migrations)"
    names = dict(MIGRATIONS)
    done = "; ".join(f"{version} {names[version].NAME}" for version in applied)
    return f"migrated from schema version {min(applied) - 1} to {now}: {done}"


def newer_schema(current: int) -> CodelaceError | None:
    """The failure of `migrate --status` on a database a newer codelace-box migrated (after
    its lines are printed): a script checking the status before using this build can tell."""
    from codelace_box.db.migrate import LATEST_VERSION

    if current <= LATEST_VERSION:
        return None
    return CodelaceError(
        f"the database's schema (version {current}) is newer than this codelace-box "
        f"(up to {LATEST_VERSION}): upgrade codelace-box before using it on this database"
    )


def _still_serving() -> list[str]:
    """On PostgreSQL, the boxes serving on the database while migrations are pending, and
    what they do once it is migrated (README, Upgrading many boxes): a box of a release since
    2026-12-04 refuses its inference requests (503 `database_newer`, no provider called)
    until restarted; one of an earlier release is not told and fails them after the call."""
    from codelace_box.db.owners import serving_processes

    serving = serving_processes()
    if not serving:
        return []
    boxes = "1 box process" if serving == 1 else f"{serving} box processes"
    return [
        f"serving on it now: {boxes} (stop every box, then migrate: after it, a box of a "
        "release since 2026-12-04 answers its inference requests 503 database_newer until "
        "restarted on this release, an older one fails them after calling the provider)"
    ]


def _package_version(name: str) -> str:
    import importlib.metadata  # with zipfile and lzma: only `version --verbose` needs it

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def build_lines(config: Config | None, config_trouble: str | None = None) -> list[str]:
    """What `version --verbose` prints: the version line, then schema and build details; with
    `config_trouble` (the config could not be loaded: its one line, as every command prints
    it, no secret), that, and no guess at the database engine."""
    from codelace_box.db.migrate import LATEST_VERSION

    frozen = getattr(sys, "frozen", False)
    lines = [
        f"codelace-box {__version__}",
        f"schema version: {LATEST_VERSION} (the newest this build applies)",
        f"build: {'one-file binary (PyInstaller)' if frozen else 'Python package'}",
        f"python: {platform.python_version()} ({platform.python_implementation()})",
        f"platform: {platform.system()} {platform.release()} {platform.machine()}",
        f"database engine: {_engine_line(config, config_trouble)}",
        "libraries: "
        + ", ".join(f"{n} {_package_version(n)}" for n in ("sanic", "httpx", "peewee", "textual")),
    ]
    if config is not None:
        lines.append(f"database: {_database_line(config)}")
    if config_trouble is not None:
        lines.append(f"config: could not be loaded: {config_trouble}")
    return lines


def _engine_line(config: Config | None, config_trouble: str | None = None) -> str:
    """SQLite's library, or on PostgreSQL its driver (db/postgres.py)."""
    from codelace_box.db.core import engine_version
    from codelace_box.db.postgres import driver_version

    if config_trouble is not None:  # the config may name either
        return "unknown (the config could not be loaded)"
    if config is None or not config.database.is_postgres:
        return engine_version()
    return driver_version()


def _database_line(config: Config) -> str:
    from codelace_box.db.postgres import redacted

    where = redacted(config.database.url) if config.database.is_postgres else config.database.path
    try:
        status = migrate_status_lines(config)
    except CodelaceError as exc:  # its one line, as every command prints it (no secret)
        return exc.message if where in exc.message else f"{where}: cannot read: {exc.message}"
    except Exception as exc:  # a version report never fails on a broken database
        return f"{where}: cannot read ({type(exc).__name__})"
    return f"{where}: {status[0]}"


def echo_lines(lines: list[str]) -> None:
    for line in lines:
        click.echo(line)


def a_file_not_a_dash(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """A backup file's path: '-' (standard input or output, as tar and pg_dump take it) is
    refused, not taken as a file of that name in the working folder."""
    if value == "-":
        raise click.BadParameter("'-' (standard input or output) is not taken: name a file")
    return value


@click.command("restore")
@click.argument("backup", type=click.Path(dir_okay=False), callback=a_file_not_a_dash)
@click.pass_obj
def restore_command(state: Any, backup: str) -> None:
    """Replace the database with BACKUP (checked as doctor checks it first), keeping the
    replaced file beside it; refused while a serve or an admin has the database open."""
    from codelace_box.cli.support import done
    from codelace_box.restore import restore_database

    restored = restore_database(state.config(), backup)
    done("restore")
    click.echo(
        f"restored {backup} (schema version {restored.version}) into {state.config().database.path}"
    )
    if restored.replaced is not None:
        click.echo(f"the replaced database is kept as {restored.replaced}")
    for leftover in restored.leftovers:
        click.echo(f"a leftover {leftover.name.rpartition('-')[2]} with no database beside it "
                   f"was moved to {leftover}")  # fmt: skip
    from codelace_box.db.migrate import LATEST_VERSION

    if restored.version < LATEST_VERSION:  # doctor checks balances on the current schema only
        click.echo("next: codelace-box migrate, then codelace-box doctor, then start the service")
        click.echo("rolling back instead? run no migrate: put back the codelace-box this backup "
                   f"is from (schema version {restored.version}) and start it")  # fmt: skip
    else:
        click.echo("next: codelace-box doctor, then start the service (serve migrates if needed)")
