"""Claude Code as people run it: interactive, in a pseudo-terminal, against the box.

The other Claude Code tests run `claude -p`, which never starts the terminal interface, nor its
default permission mode (auto), in which every request asks the API to judge the session's tool
calls (`safeguards` under the `dangerous-tool-use-*` beta, answered by `safeguard_results`). Here
the real `claude` runs in a pty of 120x40 with a throwaway HOME whose ~/.claude.json has the
first-run onboarding, theme and folder trust done, and the headless tests' environment (only the
box is contacted). The test types prompts, waits (bounded) for the fake upstream's words on the
screen, answers a tool turn (Claude Code's own Read and Bash in its work folder), asks /status
whether the API's verdicts reach the session, leaves with /exit, and checks what the box
metered; Esc leaves an answer in the middle; and a model behind an `openai` provider, which
cannot check tool calls, has Claude Code ask the user. Skipped, as test_claude_code.py is, when
no `claude` executable is installed.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import termios
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.anthropic_upstream import Reply, ToolUse
from tests.fakes.openai_upstream import Reply as OpenAIReply
from tests.messages.conftest import MODEL, OPENAI_MODEL, PRICES, MessagesBox, usd_nanos
from tests.messages.test_claude_code import (  # noqa: F401 (default_alias: an autouse fixture)
    CLAUDE,
    claude_env,
    completions,
    default_alias,
    default_model,
)
from tests.messages.test_claude_code import pytestmark as needs_claude

STEP_SEC = 60  # the longest wait for one thing to show; the steps stay within the test's timeout
pytestmark = [needs_claude, pytest.mark.timeout(6 * STEP_SEC)]
ROWS, COLUMNS = 40, 120
# Cursor moves to the right stand for blanks (Claude Code writes "Say hello" as
# "Say\x1b[1Chello"); every other escape sequence goes.
CURSOR_RIGHT = re.compile(rb"\x1b\[(\d*)C")
ANSI = re.compile(
    rb"\x1b(\[[0-9;?<>=$]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|P[^\x1b]*\x1b\\|[()][0-9A-Za-z]"
    rb"|[=>78M])"
)


def plain(raw: bytes) -> str:
    """Terminal output as text: escape sequences stripped, cursor moves to the right as blanks."""
    spaced = CURSOR_RIGHT.sub(lambda m: b" " * int(m.group(1) or 1), raw)
    return ANSI.sub(b"", spaced).decode(errors="replace")


def squashed(text: str) -> str:
    """Text without whitespace: how a phrase is looked for on a screen drawn piecemeal."""
    return re.sub(r"\s+", "", text)


class Terminal:
    """A program in a pseudo-terminal of its own: what it wrote so far, and keys typed to it."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path) -> None:
        # a TMPDIR of its own, gone at the end (Claude Code leaves sockets in $TMPDIR/cc-socks);
        # short, as a socket's path must be
        self.scratch = tempfile.mkdtemp(prefix="claude-tty-")
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        self.master = master
        self.output = bytearray()
        self.process = subprocess.Popen(
            command, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, close_fds=True,
            env={**env, "TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(ROWS),
                 "TMPDIR": self.scratch},
            start_new_session=True,
        )  # fmt: skip
        os.close(slave)

    def text(self, since: int = 0) -> str:
        """What the program wrote (from byte `since` on), as plain text."""
        return plain(bytes(self.output[since:]))

    def shows(self, phrase: str, since: int = 0) -> bool:
        """Whether the program wrote `phrase` (from byte `since` on), blanks aside."""
        return squashed(phrase) in squashed(self.text(since))

    def pump(self, timeout: float) -> bool:
        """Reads what the program writes within `timeout`; False once the terminal is closed."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the program (and its children) closed the terminal
            return False
        self.output += chunk
        return bool(chunk)

    def wait_for(self, done: Callable[[], bool], what: str, timeout: float = STEP_SEC) -> None:
        """Reads on until `done()`; fails naming `what`, with the end of the screen, if that
        takes longer than `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                screen = self.text()[-3000:]
                pytest.fail(f"{what}: not within {timeout} s; the terminal showed:\n{screen}")
            if not self.pump(0.2):  # closed: nothing more comes; the program may be ending
                time.sleep(0.2)

    def wait_to_show(self, phrase: str, since: int = 0) -> None:
        self.wait_for(lambda: self.shows(phrase, since), repr(phrase))

    def type(self, text: str) -> int:
        """Types `text`, waits for its echo, then presses Enter (typed in the same write, Enter
        would be taken as part of a paste); where the output stood before."""
        mark = len(self.output)
        os.write(self.master, text.encode())
        self.wait_for(lambda: self.shows(text, mark), f"the echo of {text!r}")
        os.write(self.master, b"\r")
        return mark

    def close(self) -> None:
        """Ends the program if it still runs (SIGKILL to its process group, by its id)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        os.close(self.master)
        shutil.rmtree(self.scratch, ignore_errors=True)


def prepared_home(home: Path, workdir: Path) -> None:
    """Claude Code's state in a throwaway HOME as after a first run: onboarding and the theme
    done, the work folder trusted."""
    home.mkdir()
    state = {
        "hasCompletedOnboarding": True,
        "theme": "dark",
        "projects": {str(workdir): {"hasTrustDialogAccepted": True}},
    }
    (home / ".claude.json").write_text(json.dumps(state))


def tool_results(body: Any) -> dict[str, str]:
    """The tool results a Messages request carries, by tool_use id."""
    return {b["tool_use_id"]: json.dumps(b.get("content"))
            for m in body["messages"] if isinstance(m["content"], list)
            for b in m["content"] if b.get("type") == "tool_result"}  # fmt: skip


def start_claude(box: MessagesBox, tmp_path: Path, key: str) -> Terminal:
    """`claude` in a terminal in a work folder of its own (tmp_path/work), against the box with
    `key`, once at its prompt (in auto mode, its default)."""
    home, workdir = tmp_path / "home", tmp_path / "work"
    prepared_home(home, workdir)
    workdir.mkdir(exist_ok=True)
    assert CLAUDE is not None
    env = {**claude_env(box, home), "ANTHROPIC_AUTH_TOKEN": key}
    terminal = Terminal([CLAUDE], env, workdir)
    terminal.wait_for(lambda: terminal.shows("Claude Code") and terminal.shows("auto mode on"),
                      "Claude Code's prompt, in auto mode")  # fmt: skip
    return terminal


def exit_claude(terminal: Terminal) -> None:
    """/exit, and claude ends with status 0."""
    terminal.type("/exit")
    terminal.wait_for(lambda: terminal.process.poll() is not None, "claude's end after /exit")
    assert terminal.process.wait(10) == 0


def test_an_interactive_session_in_a_terminal(fresh: MessagesBox, tmp_path: Path) -> None:
    email, key = fresh.new_key()
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "notes.txt").write_text("the secret word is pelican\n")
    read = ToolUse("toolu_tty_read", "Read", {"file_path": str(workdir / "notes.txt")})
    touch = ToolUse("toolu_tty_bash", "Bash", {"command": "touch read-by-claude.txt",
                                               "description": "Mark the note as read"})  # fmt: skip
    fresh.fake.script(Reply(text="Hello from the box, said the fake upstream."),
                      Reply(text="", tool_uses=[read, touch]),
                      Reply(text="The secret word is pelican, read through the box."))  # fmt: skip
    before, _ = fresh.balance_nanos(email)
    started = time.monotonic()
    terminal = start_claude(fresh, tmp_path, key)
    try:
        terminal.wait_to_show("said the fake upstream", terminal.type("Say hello"))
        mark = terminal.type("What is the secret word in notes.txt? Mark the note as read.")
        terminal.wait_to_show("pelican, read through the box", mark)
        # the API's verdicts on the tool calls came back through the box: without them, Claude
        # Code classifies locally (billed requests of its own) after a notice that holds the
        # first checked action, and /status says "Not reaching this session"
        terminal.wait_to_show("Auto mode server: Enabled", terminal.type("/status"))
        os.write(terminal.master, b"\x1b")  # Esc closes the status panel
        terminal.wait_to_show("auto mode on", len(terminal.output))
        exit_claude(terminal)
    finally:
        terminal.close()
    print(f"the interactive session took {time.monotonic() - started:.1f} s")
    calls = completions(fresh)
    assert len(calls) == 3, [c.body.get("messages", [])[-1:] for c in calls]
    beta = calls[0].headers.get("anthropic-beta", "")
    assert calls[0].body.get("safeguards") and "dangerous-tool-use-" in beta
    results = tool_results(calls[2].body)
    assert set(results) == {read.id, touch.id} and "pelican" in results[read.id]
    assert (workdir / "read-by-claude.txt").exists()
    rows = fresh.usage_rows(email)
    assert [(r["route"], r["model"], r["status"]) for r in rows] == [
        ("/v1/messages", MODEL, "ok")
    ] * 3
    one = usd_nanos((25, PRICES["in"]), (15, PRICES["out"]))  # the fake's default counts
    after, held = fresh.balance_nanos(email)
    assert (before - after, held) == (3 * one, 0)


def test_esc_in_the_middle_of_an_answer(fresh: MessagesBox, tmp_path: Path) -> None:
    """Esc while an answer streams: Claude Code leaves the stream and takes the next prompt at
    once; the box reads the upstream on and charges what it produced (the SPEC), and the hold of
    the call left goes once that is known."""
    email, key = fresh.new_key()
    story = Reply(text="Once upon a time. " + "word " * 400, output_tokens=900, chunk_chars=5,
                  delay_sec=0.02)  # about 400 events, 8 s: Esc comes in the middle  # fmt: skip
    fresh.fake.script(story, Reply(text="A shorter one, then."))
    before, _ = fresh.balance_nanos(email)
    terminal = start_claude(fresh, tmp_path, key)
    try:
        terminal.wait_to_show("Once upon a time", terminal.type("Tell me a long story"))
        mark = len(terminal.output)
        os.write(terminal.master, b"\x1b")
        terminal.wait_to_show("Interrupted", mark)
        terminal.wait_to_show("A shorter one, then.", terminal.type("Something shorter"))
        exit_claude(terminal)
    finally:
        terminal.close()
    deadline = time.monotonic() + STEP_SEC  # the box reads the story to its end
    while fresh.balance_nanos(email)[1] and time.monotonic() < deadline:
        time.sleep(0.2)
    rows = sorted(fresh.usage_rows(email), key=lambda row: row["status"])
    story_cost = usd_nanos((25, PRICES["in"]), (900, PRICES["out"]))
    short_cost = usd_nanos((25, PRICES["in"]), (15, PRICES["out"]))
    assert [(r["status"], r["cost_nanos"]) for r in rows] == [
        ("abandoned", story_cost), ("ok", short_cost)
    ]  # fmt: skip
    after, held = fresh.balance_nanos(email)
    assert (before - after, held) == (story_cost + short_cost, 0)


@contextmanager
def default_name_on(box: MessagesBox, model: str) -> Iterator[None]:
    """Claude Code's default model name aliased to `model` for the while."""
    box.cli("models", "alias", default_model(), model)
    box.until_reloaded()
    try:
        yield
    finally:
        box.cli("models", "alias", default_model(), MODEL)
        box.until_reloaded()


def test_auto_mode_on_an_openai_model_asks_before_a_checked_action(
    fresh: MessagesBox, tmp_path: Path
) -> None:
    """The README's word: behind an `openai` provider the server-side check of auto mode cannot
    run, and the box makes up no verdict (the translation leaves `safeguards` out, and answers
    no `safeguard_results`): Claude Code asks the user before an action that needs the check
    (here a fetch); cancelled, it never runs. The call is charged as any other."""
    email, key = fresh.new_key()
    fetch = {"command": "curl -s http://127.0.0.1:9/page -o page.html", "description": "Fetch"}
    fresh.openai_fake.push(OpenAIReply(content="", tool_calls=[
        {"name": "Bash", "arguments": json.dumps(fetch)}]))  # fmt: skip
    with default_name_on(fresh, OPENAI_MODEL):
        terminal = start_claude(fresh, tmp_path, key)
        try:
            mark = terminal.type("Fetch the page")
            terminal.wait_to_show("Auto mode can't check actions in this session", mark)
            mark = len(terminal.output)
            os.write(terminal.master, b"\x1b")  # Esc: the action does not run, the turn stops
            terminal.wait_to_show("auto mode on", mark)
            exit_claude(terminal)
        finally:
            terminal.close()
    assert not (tmp_path / "work" / "page.html").exists()
    assert completions(fresh) == [] and len(fresh.openai_fake.requests) == 1
    assert "safeguards" not in fresh.openai_fake.requests[0].body
    rows = fresh.usage_rows(email)
    assert [(r["model"], r["status"]) for r in rows] == [(OPENAI_MODEL, "ok")]
    assert fresh.balance_nanos(email) == (20_000_000_000 - rows[0]["cost_nanos"], 0)
