"""Hold owners: which process took a hold ('<host>:<pid>:<token>'), which owners are gone (a
crashed worker, a box that died), and releasing their holds: at start (`release_orphaned_holds`)
and by the serving process's sweep (gateway/pipeline.py). Taking and settling a hold is
metering's (gateway/metering.py).

The token (8 random hex digits, new in every process) makes an owner one process start: in
containers every box may be pid 1 and hostnames repeat (`--network host`, one name set on many
machines), so '<host>:<pid>' alone could name two boxes on one PostgreSQL database, each
taking the other's holds for its own. Owners written before the token ('<host>:<pid>') are
still read.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from codelace_box.db import hotpath
from codelace_box.db.core import Tx, connection, utcnow, write_transaction
from codelace_box.db.failures import traceback_of
from codelace_box.db.owners import (
    claim_owner,
    claim_owner_again,
    gone_owners,
    owner_claims_can_drop,
)
from codelace_box.reports.steady_clock import SteadyClock

ORPHAN_AGE_SEC = 6 * 3600.0  # no request lives this long (Sanic's RESPONSE_TIMEOUT is shorter)
log = logging.getLogger("codelace_box.gateway")
_HOST = socket.gethostname()[:200]  # with the pid and the token, within hold.owner's 255


def _new_owner() -> str:
    return f"{_HOST}:{os.getpid()}:{secrets.token_hex(4)}"


_OWNER = [_new_owner()]  # this process as a hold owner, made anew in a forked child
os.register_at_fork(after_in_child=lambda: _OWNER.__setitem__(0, _new_owner()))


def hold_owner() -> str:
    """This process as a hold owner: '<host>:<pid>:<token>'."""
    return _OWNER[0]


def _host_and_pid(owner: str) -> tuple[str, int | None]:
    """The host and the pid an owner names (None: no pid), with or without its token."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    return host, int(pid_text) if pid_text.isdigit() else None


def claim_hold_owner() -> None:
    """Mark this process alive as the owner of the holds it takes (a server worker, at start):
    on PostgreSQL the other boxes then free its holds within a sweep of its death."""
    claim_owner(hold_owner())


def claim_hold_owner_again() -> None:
    """At each sweep, on the sweep's session: this process claimed alive again when the
    session that claimed it was dropped (PostgreSQL; on SQLite nothing)."""
    claim_owner_again(hold_owner())


def _owner_is_gone(owner: str, *, starting: bool = False) -> bool:
    """Whether the process of this host an owner names has ended (SQLite: the host's pids).

    This process's own pid under another owner is an earlier process's (a box restarted in a
    container, pid 1 again), gone: its holds are freed at start, before this process reserved
    anything. Seen again by a sweep, it is a live box of another pid namespace with this
    hostname (a container beside this one, on the same file): left to age out."""
    host, pid = _host_and_pid(owner)
    if host != _HOST or pid is None:
        return not host  # another host's holds age out; a hold without owner is orphaned
    if pid == os.getpid():
        return starting and owner != hold_owner()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _ended_unreaped(pid)


def _ended_unreaped(pid: int) -> bool:
    """Whether a process that still answers kill(pid, 0) has in fact ended and only waits for
    its parent to reap it (a zombie: a server killed a moment ago, or under an init that reaps
    late). Linux's /proc tells; elsewhere: no."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rpartition(")")[2].split()  # the name, in parentheses, may hold spaces
    return bool(fields) and fields[0] in ("Z", "X")


def release_orphaned_holds(max_age_sec: float = ORPHAN_AGE_SEC) -> int:
    """Release holds left by a crash (run at start, before any request).

    On SQLite a hold is orphaned when it is older than any request can live, or when the
    process of this host that took it is gone; holds of another server still running on the
    same database stay. On PostgreSQL a hold is never judged by its age: boxes stamp holds on
    their own clocks, and one whose clock runs hours ahead would free the live holds of every
    other box (their calls then settle on no hold: never charged). An owner no session claims
    may be a live box whose sessions were just dropped (OwnerWatch): its holds are left to the
    sweeps, which free them once it stayed gone.
    """
    cutoff = str(utcnow() - timedelta(seconds=max_age_sec))
    with write_transaction() as tx:
        hotpath.one_writer_with_requests(tx)
        owners = hotpath.hold_owners(tx)
        released = 0
        if not owner_claims_can_drop():  # SQLite: too old, or a process of this host that ended
            released = hotpath.delete_holds_before(tx, cutoff)
            gone = [owner for owner in owners if _owner_is_gone(owner, starting=True)]
            released += release_holds_in(tx, owners=gone)
        hotpath.recount_held(tx)  # also mends a cached total that drifted
    return released


def release_every_hold() -> int:
    """Release every hold of a database no box serves (a restored backup: its holds were
    requests in flight in a box long gone, whose pid may be another process's by now); how
    many."""
    with write_transaction() as tx:
        return release_holds_in(tx, owners=hotpath.hold_owners(tx))


def dead_hold_owners() -> list[str]:
    """The owners of open holds that were processes of this host and are gone (a worker that
    crashed while the others serve on); never this process. A read: takes no write lock."""
    me = hold_owner()
    owners = hotpath.hold_owners(connection())
    gone = gone_owners(owners)
    if gone is not None:  # PostgreSQL: a box on any machine, dead for a sweep interval at most
        return [owner for owner in gone if owner != me]
    return [
        owner
        for owner in owners
        if owner != me and _host_and_pid(owner)[0] == _HOST and _owner_is_gone(owner)
    ]


class OwnerWatch:
    """The hold owners another process saw gone at every sweep, and since when. On PostgreSQL
    an owner is gone when no session claims it, yet a live box's sessions can be dropped (a
    database restart, a failover, an idle cut): it claims again with its next session, at the
    latest at its own next sweep. Its holds (its requests in flight, which settle on them) are
    freed only once it stayed gone for a grace of more than a sweep interval. On SQLite an
    owner is a process of this host, gone for good once it ended: no grace."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}

    def long_gone(self, grace_sec: float) -> list[str]:
        """The dead hold owners (`dead_hold_owners`) seen gone for `grace_sec` and more."""
        try:
            gone = dead_hold_owners()
        except BaseException:
            self._since.clear()  # not seen meanwhile: the count starts again
            raise
        if not owner_claims_can_drop():  # SQLite: a process of this host that ended
            return gone
        now = time.monotonic()
        self._since = {owner: self._since.get(owner, now) for owner in gone}
        return [owner for owner, since in self._since.items() if now - since >= grace_sec]


def own_holds_older_than(age_sec: float) -> list[str]:
    """The request ids of this process's holds taken more than `age_sec` ago, and on SQLite of
    anyone's older than any request lives (a crashed server's, its pid alive again as another
    process's: seen alive, it was freed only by a start that late). On PostgreSQL another
    box's holds are freed only when no session claims it (`dead_hold_owners`), never by their
    age on this clock (see `release_orphaned_holds`). A read."""
    cutoff = str(utcnow() - timedelta(seconds=age_sec))
    own = hotpath.holds_of_owner_before(connection(), hold_owner(), cutoff)
    if owner_claims_can_drop():
        return own
    # by the time this process counted: a wall clock that leapt hours ahead (NTP's first step
    # on a VM whose clock was behind) made every live worker's holds look that old
    ancient = str(hold_clock().now() - timedelta(seconds=ORPHAN_AGE_SEC))
    return own + [r for r in hotpath.holds_before(connection(), ancient) if r not in own]


_STEADY: list[SteadyClock] = []  # this process's, made at its start (not inherited)
os.register_at_fork(after_in_child=_STEADY.clear)


def hold_clock() -> SteadyClock:
    """The wall clock, held to the time this process counted while it leaps ahead: made when
    a worker starts (api/inference.py), since one made at its first sweep (30 s later) took a
    leap meanwhile (NTP's first step, just after boot) for the time, and freed live holds."""
    if not _STEADY:
        _STEADY.append(SteadyClock(quiet=True))
    return _STEADY[0]


def release_holds_in(tx: Tx, *, owners: Iterable[str] = (), request_ids: Iterable[str] = ()) -> int:
    """Inside a transaction: release every hold of these owners and these requests, and
    recount what their users hold. A hold settled meanwhile is simply not there any more."""
    released = 0
    for owner in owners:
        released += hotpath.delete_holds_of_owner(tx, owner)
    for request_id in request_ids:
        released += hotpath.delete_hold_of_request(tx, request_id)
    if released:
        hotpath.recount_held(tx)
    return released


def log_released(what: str, future: asyncio.Future[int]) -> None:
    """The sweep's line on the holds it freed (Gateway.release_leftovers), or its failure."""
    if future.cancelled() or (exc := future.exception()) is not None:
        error = None if future.cancelled() else exc
        log.error("releasing the holds of %s failed: %s", what, error or "cancelled",
                  exc_info=error and traceback_of(error))  # fmt: skip
    elif released := future.result():
        log.warning("released %d holds of %s (process or call gone)", released, what)
