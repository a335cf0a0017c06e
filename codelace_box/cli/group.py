"""The command line's click group: every failure as one line on stderr and the exit status
(1 errors, 2 usage mistakes, 141 a reader gone), `--config` taken after the command too, and
a terminal's limits (an encoding that cannot show a character, a terminal gone after
`serve`). The state it reports from (notes, changes made, the lock held) is cli/support.py's."""

from __future__ import annotations

import contextlib
import os
import sys
from contextlib import suppress
from typing import Any, NoReturn

import click

from codelace_box.cli.support import _CHANGED, _HELD, _UPGRADED
from codelace_box.cli.text import not_utf8
from codelace_box.db.failures import operator_words
from codelace_box.errors import CodelaceError


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
