"""The routing snapshot on PostgreSQL: reloaded by a task of its own every `ttl_sec`, on a
thread of its own (its own connection), never by a request.

A lookup on SQLite reloads a stale snapshot where it stands (gateway/routing.py): a few local
reads twice a second at most. On PostgreSQL those reads wait for the server's round trips, and
for as long as its timeouts when its host stops answering (db/postgres.py NETWORK_DEFAULTS:
5 s to connect, 15-20 s on an open session), so a reload on the event loop would hold every
request of the process meanwhile. Here lookups always read the last snapshot, and the task
replaces it every `ttl_sec` (0.5 s) once read: a catalog change made anywhere is seen within a
second, as on SQLite. While the server cannot be reached the last snapshot keeps serving (what
needs the database fails on its own, with a 503); the first failure and the recovery are
logged. `invalidate()` (a flagged key, a key back from its probe) reloads at once, and a reload
read before this process flagged a key is not installed (it would put the key back): it is
read again.

Not on the thread of the requests' own work (db/offload.py run_db_work): a handler's write
there can wait for a row lock (up to the 10 s lock timeout, db/pg_driver.py) and everything
queued behind it with it, and the catalog's reads would then serve a price or a provider
changed seconds before. The catalog's reads take no row lock, so its thread never waits so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from codelace_box.db.core import POSTGRES, engine
from codelace_box.db.offload import DbThread, again_if_dropped
from codelace_box.gateway.routing import DEFAULT_TTL_SEC, RouteTable, Snapshot

log = logging.getLogger("codelace_box.gateway")


class RefreshedRouteTable(RouteTable):
    """A RouteTable whose snapshot a task reloads off the loop; `start()` loads the first."""

    def __init__(self, secret_key: str, ttl_sec: float = DEFAULT_TTL_SEC) -> None:
        super().__init__(secret_key, ttl_sec)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._thread: DbThread | None = None

    def _fresh(self) -> None:
        """A lookup never reloads: the task does."""

    def invalidate(self) -> None:
        """Reload now (on the loop's thread)."""
        self._wake.set()

    async def start(self) -> None:
        """Load the first snapshot (before serving), then reload every `ttl_sec`."""
        self._thread = DbThread("codelace-catalog", fail_together=True)
        self._install(await self._read())
        self._task = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.stop()  # closes its connection

    async def _read(self) -> Snapshot:
        """The catalog read on the catalog's thread (once more on a session the server had
        dropped: it only reads)."""
        if self._thread is None:
            raise RuntimeError("the catalog's thread is stopped")
        return await self._thread.run(again_if_dropped, self.load)

    async def _refresh_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._ttl)
            self._wake.clear()
            await self._refresh()

    async def _refresh(self) -> None:
        """One reload; a failed one leaves the last snapshot serving until the next."""
        flagged = self._flagged
        try:
            snapshot = await self._read()
        except Exception as exc:
            if not self._failing:
                log.warning("reloading the catalog failed (the last one serves): %s", exc)
            self._failing = True
            return
        if self._failing:
            log.info("reloading the catalog works again")
            self._failing = False
        if flagged != self._flagged:  # read before a key was flagged here: read again
            self._wake.set()
            return
        self._install(snapshot)


def route_table(secret_key: str) -> RouteTable:
    """This process's routing table for the open database's engine (`start()` it)."""
    if engine() == POSTGRES:
        return RefreshedRouteTable(secret_key)
    return RouteTable(secret_key)
