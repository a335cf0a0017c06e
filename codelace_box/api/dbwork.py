"""Handlers whose work reads or writes the database: written as plain functions, run where the
engine wants them (one decorator each, not a hand-off in every handler).

`@database_handler` makes `def work(request, **route_params) -> HTTPResponse` the async
handler Sanic calls. On PostgreSQL the whole of `work` (its feature calls, the views that read
more rows, a portal session's check) runs on the process's work thread (db/offload.py
`run_db_work`; not behind the reads that grow with history): a slow or silent database server
holds that thread and this request (a 503 `database_unavailable` once it cannot be reached),
never the event loop, which goes on serving everything that needs no database. On SQLite
`work` runs where it is, as any local call.
`@keyed_database_handler` first checks the caller's API key (401/403; on the loop, its lookup
has a thread of its own on PostgreSQL: db/lookups.py) and hands `work` its AuthContext after
the request.

A handler that also awaits something else (a mail, Stripe, a read that grows with history)
stays async and sends its database steps through `run_db_work` (or `run_in_db_thread`)
itself, as the feature functions it calls do (accounts/signin.py, billing/checkout.py,
billing/webhooks.py).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from functools import partial, wraps
from typing import Any, Concatenate, ParamSpec

from sanic import Request
from sanic.response import HTTPResponse

from codelace_box.accounts.keys import AuthContext
from codelace_box.api.common import require_auth
from codelace_box.db.offload import again_if_dropped, run_db_work

P = ParamSpec("P")
Handler = Callable[Concatenate[Request, P], Coroutine[Any, Any, HTTPResponse]]
_READS = ("GET", "HEAD")


def database_handler(work: Callable[Concatenate[Request, P], HTTPResponse]) -> Handler[P]:
    """The handler that runs `work` off the event loop on PostgreSQL (here on SQLite)."""

    @wraps(work)
    async def handler(request: Request, *args: P.args, **kwargs: P.kwargs) -> HTTPResponse:
        return await run_db_work(
            _once_more_if_read, request, partial(work, request, *args, **kwargs)
        )

    return handler


def keyed_database_handler(
    work: Callable[Concatenate[Request, AuthContext, P], HTTPResponse],
) -> Handler[P]:
    """The handler that checks the caller's API key, then runs `work(request, auth, ...)` off
    the event loop on PostgreSQL (here on SQLite)."""

    @wraps(work)
    async def handler(request: Request, *args: P.args, **kwargs: P.kwargs) -> HTTPResponse:
        auth = await require_auth(request)
        done = partial(work, request, auth, *args, **kwargs)
        return await run_db_work(_once_more_if_read, request, done)

    return handler


def _once_more_if_read(request: Request, work: Callable[[], HTTPResponse]) -> HTTPResponse:
    """`work()`; a read (GET, HEAD) that met a session the server had dropped (an idle cut, a
    restart: it fails at once) runs once more, on a new session, instead of a 503 (offload.py
    `again_if_dropped`: not one that failed slowly, a host that does not answer). A change is
    not run twice here."""
    if request.method not in _READS:
        return work()
    return again_if_dropped(work)
