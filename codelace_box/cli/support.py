"""Shared pieces of the command line: state, error handling, output helpers."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from codelace_box.cli.text import display_width, not_utf8, pad
from codelace_box.config import (
    DEFAULT_CONFIG_FILE,
    Config,
    load_config,
    resolve_config_path,
)
from codelace_box.db.core import open_database
from codelace_box.db.failures import operator_words
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
        its schema said once the command ended (_fail: in its one line)."""
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


def show_what_the_terminal_can() -> None:
    """Text the terminal's encoding cannot show (a Latin-1 locale, `…` in a key hint) is
    replaced, not "unexpected UnicodeEncodeError": stdout's strict errors become `replace`;
    stderr's usual `backslashreplace` already never fails."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and stream.errors not in ("replace", "backslashreplace"):
            reconfigure(errors="replace")


class CodelaceGroup(click.Group):
    """Turns every failure into one line on stderr: exit 1 for errors, 2 for usage mistakes."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        show_what_the_terminal_can()
        try:
            return self._main(*args, **kwargs)
        finally:  # a command run in this process later (tests) is another command
            for marker in _HELD:
                marker.release()
            _HELD.clear()

    def _main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        _CHANGED.clear()  # a command run in the same process before (tests) changed nothing here
        try:
            result = super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.format_message())  # the help on stdout; the one error line on stderr
            path = exc.ctx.command_path if exc.ctx else "codelace-box"
            _fail(f"missing command (see: {path} --help)", 2)
        except click.UsageError as exc:
            hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx else ""
            _fail(f"{exc.format_message()}{hint}", exc.exit_code)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            _fail("aborted", 1)
        for notice in _UPGRADED:  # stdout stays the command's own (--json)
            click.echo(notice, err=True)
        sys.exit(result if isinstance(result, int) else 0)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, config_first(args))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CodelaceError as exc:
            _fail(exc.message, exc.exit_status)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except BrokenPipeError:
            _end_quietly()
        except Exception as exc:
            if os.environ.get("CODELACE_DEBUG"):
                raise
            if said := operator_words(exc) or _output_lost(exc):  # no "unexpected" for
                _fail(said, 1)  # a lock, a full disk, an output that cannot be written
            if said := not_utf8(exc):
                _fail(said, 2)
            _fail(f"unexpected {type(exc).__name__}: {exc}", 1)


def _output_lost(exc: Exception) -> str | None:
    """The line for a command whose standard output failed (`> FILE` on a full disk, an I/O
    error), naming the changes it made all the same; None when `exc` is about something else."""
    if not (isinstance(exc, OSError) and _writing_stdout(exc)):
        return None
    why = exc.strerror or str(exc)
    if not _CHANGED:
        return f"cannot write the output to standard output: {why}"
    done = ", ".join(dict.fromkeys(_CHANGED))
    return (
        f"{done} is done, but its output could not be written ({why}): do not run it again; "
        "check the result (e.g. with audit)"
    )


def _writing_stdout(exc: BaseException) -> bool:
    """Whether `exc` was raised by a call handed standard output (click.echo's `file`, the
    export's stream): a frame of its traceback holds it."""
    streams = [s for s in (sys.stdout, getattr(sys.stdout, "buffer", None)) if s is not None]
    tb = exc.__traceback__
    while tb is not None:
        if any(value is s for value in tb.tb_frame.f_locals.values() for s in streams):
            return True
        tb = tb.tb_next
    return False


def _end_quietly() -> NoReturn:
    """The reader of our output left (`... | head -1`): stop without a word, as Unix tools do,
    with the status a shell shows for such an end (128 + SIGPIPE)."""
    _drop_unwritten_output()  # nothing left to flush into the closed pipe at exit
    sys.exit(141)


def config_first(args: list[str]) -> list[str]:
    """Move a `--config PATH` given after the command (`serve --config x.toml`) to the front.

    `--config` is the group's option; operators also write it after the command, as with
    other tools' global flags, so both places work. Nothing after `--` is touched. Each keeps
    its order: of two, the last given is used (an alias's, then one typed after it), as click.
    """
    rest, moved, i = list(args), [], 0
    while i < len(rest) and rest[i] != "--":
        if rest[i] == "--config" and i + 1 < len(rest):
            moved += rest[i : i + 2]
            del rest[i : i + 2]
        elif rest[i].startswith("--config="):
            moved.append(rest.pop(i))
        else:
            i += 1
    return moved + rest


def _fail(message: str, code: int) -> NoReturn:
    """Print one line on stderr and exit (saying too that the database was migrated)."""
    notices = "".join(f" ({notice.removeprefix('note: ')})" for notice in _UPGRADED)
    said = " ".join(message.split()) + notices
    click.echo("error: " + said, err=True)
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except (OSError, ValueError):  # a full disk, a reader gone: what it holds cannot go out
        _drop_unwritten_output()
    sys.exit(code)


def _drop_unwritten_output() -> None:
    """Standard output cannot be written: what it still holds goes to /dev/null instead, so the
    interpreter's own flush at exit does not fail again (the single binary then exited 120
    with a traceback, not the command's status)."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


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
    output afterwards says so (`_output_lost`)."""
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


def let_go_of_a_lost_terminal() -> None:
    """After `serve`: when the terminal it wrote its log to has gone (a hangup stopped it), the
    lines still buffered for it can never be written, and Python's own flush of them at exit
    failed it with exit 120, not the 0 of a graceful stop (always in the binary, whose Python
    ignores PYTHONUNBUFFERED). Such a stream is pointed at /dev/null first."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            with suppress(OSError, ValueError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stream.fileno())
                os.close(devnull)
                stream.flush()
        except ValueError:  # closed
            pass


class ListenHost(click.ParamType):
    """A listen address as server.host takes it: no spaces or line breaks, not empty (a
    quoted variable with a stray space would otherwise fail later as 'cannot listen')."""

    name = "host"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from codelace_box.config.schema import HOST

        if not re.fullmatch(HOST[0], value):
            self.fail(f"{value!r} is not {HOST[1]}.", param, ctx)
        return value
