"""Shared pieces of the command line: state and output helpers (the group that turns a
command's failures into one line, and the terminal's limits: cli/group.py)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from codelace_box.cli.text import display_width, pad
from codelace_box.config import (
    DEFAULT_CONFIG_FILE,
    Config,
    load_config,
    resolve_config_path,
)
from codelace_box.db.core import open_database
from codelace_box.db.openlock import OpenMarker, hold_for_command
from codelace_box.db.sqlite_file import (
    POINT_AT_IT,
    config_read,
    empty_sqlite_file,
    made_database,
    missing_database,
)
from codelace_box.errors import CodelaceError

if TYPE_CHECKING:
    from codelace_box.audit import Change


_UPGRADED: list[str] = []  # this command migrated (or made) the database: said on stderr
_HELD: list[OpenMarker] = []  # the database's lock file, held while this command runs
_CHANGED: list[str] = []  # the admin changes this command committed (audited): said if its
# output then cannot be written, so a failed exit is not taken for a change not made


@dataclass
class CliState:
    """What the group parsed, with the config and database opened on first use."""

    config_path: str | None
    _config: Config | None = field(default=None, repr=False)

    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def database(self) -> Any:
        """The migrated database, opened for this command (`migrated_database`), an upgrade of
        its schema said once the command ended (cli/group.py _fail: in its one line)."""
        from codelace_box.db.migrate import upgrade_notice

        db, applied = self.migrated_database()
        if notice := upgrade_notice(applied):
            _UPGRADED.append(notice)
        return db

    def migrated_database(self) -> tuple[Any, list[int]]:
        """The database opened and migrated, and the versions applied now. A SQLite file not
        there is made (a command works on the built-in defaults with no config at all), and
        so is one of 0 bytes; either is said on stderr: run from the wrong folder (or given a
        failed copy), a new empty one answers as if the data were gone."""
        from codelace_box.audit import migrate_recorded

        made = self.missing_database()
        database = self.config().database
        self.hold_database()  # before the first write: a restore running refuses it
        empty = not database.is_postgres and empty_sqlite_file(database.path)
        db = open_database(database.target)
        applied = migrate_recorded(db)
        if made is not None or empty:
            self.note_new_database(was_empty=empty)
        return db, applied

    def hold_database(self) -> None:
        """Hold the SQLite database's lock file while this command runs (`hold_for_command`):
        refused while a restore runs, and a restore refused meanwhile. Every command that
        opens the database takes it first, also one that only reads it (backup, doctor)."""
        database = self.config().database
        if not database.is_postgres:
            _HELD.append(hold_for_command(database.path))

    def missing_database(self) -> str | None:
        """Why the configured SQLite file cannot be used as it is: it is not there (None: it
        is, or the database is PostgreSQL or in memory); db/sqlite_file.py's words."""
        return missing_database(self.config())

    def note_new_database(self, was_empty: bool = False) -> None:
        """Say (once the command ended, as serve does at its start) that the database it
        opened was not there (or was a file of 0 bytes) and is new and empty."""
        made = made_database(os.path.abspath(self.config().database.path), was_empty)
        source = config_read(self.config())
        _UPGRADED.append(
            f"note: {made} (config: {source}; if your data should be there, point at it with "
            f"{POINT_AT_IT})"
        )

    def secret_key(self) -> str:
        """The server secret (the database opened first): never a new one over stored keys.
        One generated now is said once the command ended (where, never what), as serve does:
        the operator must keep that file with the database."""
        from codelace_box.catalog.providers import server_secret
        from codelace_box.config import existing_secret_key
        from codelace_box.config.secret import secret_key_path

        config = self.config()
        new = existing_secret_key(config) is None
        key = server_secret(config)
        if new:
            _UPGRADED.append(
                f"note: generated a new server secret in {secret_key_path(config).absolute()} "
                "(keep a copy with the database: it encrypts the provider keys; or set "
                "server.secret_key)"
            )
        return key

    def init_target(self) -> Path:
        """Where `init` writes: --config, else $CODELACE_CONFIG, else ./codelace.toml."""
        return resolve_config_path(self.config_path) or Path(DEFAULT_CONFIG_FILE)


def say_notes_now() -> None:
    """Say the notes gathered so far (on stderr) now, not once the command ended: admin's
    dashboard takes the terminal over, and a new database must be said before it shows."""
    for notice in _UPGRADED:
        click.echo(notice, err=True)
    _UPGRADED.clear()


pass_state = click.make_pass_decorator(CliState)


def emit(data: Any, as_json: bool, render: Callable[[Any], str]) -> None:
    """Print data as JSON or as the human rendering."""
    click.echo(json.dumps(data, indent=2, default=str) if as_json else render(data))


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain text table, its columns aligned as a terminal shows them (a name in CJK or
    with an emoji takes two columns a character, a combining accent none)."""
    if not rows:
        return "(none)"
    cells = [[plain(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(display_width(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(pad(v, w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def plain(value: Any) -> str:
    """A value as the CLI prints it: '-' for nothing, USD floats (`usd_json`) in plain notation
    (0.000001, not 1e-06), a list comma-separated (as `--models` takes it)."""
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(plain(item) for item in value)
    if isinstance(value, float):
        return f"{Decimal(repr(value)):f}"
    return str(value)


@contextlib.contextmanager
def audited(
    command: str, target: str, state: Callable[[], dict[str, Any] | None] | None = None
) -> Iterator[Change]:
    """An admin change made from the command line, with its audit entry in its transaction."""
    from codelace_box.audit import admin_change

    with admin_change("cli", command, target, state) as change:
        yield change
    done(command)


def done(command: str) -> None:
    """Note that this command's change is made (committed, written): a failure to print its
    output afterwards says so (cli/group.py `_output_lost`)."""
    _CHANGED.append(command)


def show_key_once(full_key: str, key_id: str) -> None:
    """Print the new key; one that cannot be (stdout closed, a full disk, a reader gone) is
    revoked again: no working key is left that nobody saw."""
    from codelace_box.accounts.keys import revoke_key
    from codelace_box.audit import states

    try:
        if sys.stdout is None:
            raise OSError("standard output is closed")
        click.echo(full_key)
    except OSError as exc:
        with audited("keys revoke", key_id, lambda: states.api_key(key_id)):
            revoke_key(key_id)
        why = exc.strerror or str(exc)
        raise CodelaceError(
            f"key {key_id} could not be printed ({why}), so it was revoked again: run keys "
            "create where its output can be written"
        ) from None


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


class WholeNumber(click.IntRange):
    """A whole number in a range, written in ASCII digits (an optional sign): click's own
    takes what Python's int() takes, such as "٣" (read as 3) and "1_000"."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            digits = value.strip().removeprefix("-").removeprefix("+")
            if not (digits.isascii() and digits.isdigit()):
                self.fail(f"{value!r} is not a whole number (digits 0-9).", param, ctx)
        return super().convert(value, param, ctx)


class ListenHost(click.ParamType):
    """A listen address as server.host takes it: no spaces or line breaks, not empty (a
    quoted variable with a stray space would otherwise fail later as 'cannot listen')."""

    name = "host"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from codelace_box.config.schema import HOST

        if not re.fullmatch(HOST[0], value):
            self.fail(f"{value!r} is not {HOST[1]}.", param, ctx)
        return value
