"""One audit log entry: the change being made (`Change`), the entry as stored (`Entry`), who
made it (`os_user`), its states with secrets masked, its canonical JSON and hash (`entry_hash`
over the entry before's hash and `_body`), and how a stored row reads back (`_entry`). The
writing and reading of the log are the package's (audit/__init__.py); the chain's check,
audit/chain.py."""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

from codelace_box.crypto import mask_secret

SECRET_NAMES = frozenset(
    {"key", "api_key", "full_key", "secret", "secret_key", "password", "token", "webhook_secret"}
)
State = dict[str, Any] | None


@dataclass
class Change:
    """An admin change being made: the body may name its target or after once known."""

    client: str
    command: str
    target: str
    before: State = None
    after: State = None
    after_set: bool = field(default=False, repr=False)

    def set_after(self, after: State) -> None:
        """The state after the change, when `admin_change` has no `state` to read it."""
        self.after, self.after_set = after, True


@dataclass(frozen=True)
class Entry:
    """One audit log entry as stored."""

    id: int
    created_at: str
    os_user: str
    client: str
    command: str
    target: str
    before: State
    after: State
    prev_hash: str
    hash: str


def os_user() -> str:
    """Who runs this process, as the OS knows them: the account of its user id (not $USER or
    $LOGNAME, which any shell may set), and who became it through sudo."""
    if not hasattr(os, "geteuid"):  # Windows: no user ids
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "unknown"
    import pwd

    uid = os.geteuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:  # an id with no account (a container's)
        name = f"uid:{uid}"
    name, became = _text(name), _text(os.environ.get("SUDO_USER", ""))
    return f"{name} (sudo from {became})" if became and became != name else name


def _text(name: str) -> str:
    """An account name as the OS gave it (SUDO_USER: any text its environment holds) as an
    entry may show it: bytes that are not UTF-8 (a name in a legacy encoding, which sudo
    passes on as it is; as surrogates the entry could not be written, and every audited
    command failed) and characters that are not printable (escape sequences, direction
    marks: `audit` and the dashboard show the name) written as escapes (\\xNN, \\uNNNN)."""
    text = os.fsencode(name).decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def canonical(value: Any) -> str:
    """The one JSON text of a value: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def mask_state(state: State) -> State:
    """A state with every value under a secret-looking name masked (`sk-…a1b2`)."""
    if state is None:
        return None
    return {k: _masked(k, v) for k, v in state.items()}


def _masked(name: str, value: Any) -> Any:
    if name.lower() in SECRET_NAMES and isinstance(value, str) and value:
        return mask_secret(value)
    if isinstance(value, dict):
        return mask_state(value)
    if isinstance(value, list):
        return [mask_state(v) if isinstance(v, dict) else v for v in value]
    return value


def entry_hash(prev_hash: str, body: dict[str, Any]) -> str:
    """sha256 over the previous entry's hash and this entry's canonical JSON."""
    return hashlib.sha256((prev_hash + canonical(body)).encode()).hexdigest()


def _body(created_at: str, user: str, change: Change) -> dict[str, Any]:
    return {
        "created_at": created_at,
        "os_user": user,
        "client": change.client,
        "command": change.command,
        "target": change.target,
        "before": change.before,
        "after": change.after,
    }


UNREADABLE = "(unreadable)"


def _state(text: str | None) -> State:
    """A stored state: a JSON object, or none. Text edited by hand into no JSON object (`{`,
    `[1]`) is kept as `{"(unreadable)": text}`, so `audit` still lists the log and doctor
    names the entry (its hash no longer matches) instead of failing on it."""
    if text is None:
        return None
    try:
        state = json.loads(text)
    except ValueError:
        state = None
    return state if isinstance(state, dict) else {UNREADABLE: str(text)}


def _entry(row: tuple[Any, ...]) -> Entry:
    before, after = (_state(s) for s in row[6:8])
    created_at, user, client, command, target = (str(v) for v in row[1:6])
    return Entry(
        int(row[0]),
        created_at,
        user,
        client,
        command,
        target,
        before,
        after,
        str(row[8]),
        str(row[9]),
    )
