"""The pure CPU work of a large request body, on a worker thread while the event loop serves
others: its JSON parsed, its shape checked, the call routed and priced, its translation for the
upstream written. A body within the size limit made of many small items (290,000 one-word
messages, 90,000 tools) took seconds of that work, on the loop: one call held a /healthz of
another client 1.2 to 2.9 s, four at once 7.6 s, and a $0 account's 402 came after all of it.

Only a body of OFF_LOOP_BODY_BYTES or more goes to the thread (what the others pay is one length
comparison): a body of small items that size is some 50-100 ms of work on a loaded machine,
an ordinary one (a long Claude Code session's few hundred turns) a few milliseconds. The work
never touches the database (the catalog is read from the snapshot the loop loaded:
routing.RouteTable.as_loaded). The threads are a pool of their own, BODY_THREADS: a sender of
many large bodies fills only these (other large bodies wait behind its), never the default
pool's (DNS look-ups, large answers); the interpreter's switch interval lets the loop run
between the thread's steps.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from codelace_box.jsonwire import dumps_between_turns
from codelace_box.providers.base import JSON, ProviderAdapter, UpstreamRequest, UpstreamTarget

OFF_LOOP_BODY_BYTES = 256 * 1024
BODY_THREADS = 2
P = ParamSpec("P")
R = TypeVar("R")


class _Pool:
    """This process's body threads, started on first use (a forked worker makes its own)."""

    executor: ThreadPoolExecutor | None = None


def _forget_pool() -> None:
    _Pool.executor = None


os.register_at_fork(after_in_child=_forget_pool)


async def off_loop(work: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`work(*args, **kwargs)` on a body thread, in this task's context (its log lines name its
    request); what it raises is raised here."""
    if _Pool.executor is None:
        _Pool.executor = ThreadPoolExecutor(BODY_THREADS, thread_name_prefix="codelace-body")
    run = functools.partial(contextvars.copy_context().run, work, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_Pool.executor, run)


def written_request(
    adapter: ProviderAdapter, body: JSON, target: UpstreamTarget
) -> UpstreamRequest:
    """The upstream request of a call, its body written too (for a body thread)."""
    request = adapter.build_request(body, target)
    request.written = dumps_between_turns(request.json_body)
    return request
