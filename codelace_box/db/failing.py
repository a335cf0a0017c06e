"""A periodic job's failures in the log (the hold sweep, the key probes, the upkeep, retention):
the first of a run of failures is one line (with a bug's traceback; none for a database that
cannot be reached or is locked), the next ones say nothing while the error stays of one kind,
and the run's end is one line more. A PostgreSQL server down for an hour logged a traceback a
job at every tick: hundreds, drowning what the operator looks for."""

from __future__ import annotations

import logging
import time

from codelace_box.db.failures import traceback_of


class FailureLog:
    """The log lines of one periodic job's failures."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log, self.what = log, what
        self.since: float | None = None  # monotonic: the run of failures began
        self.kind = ""  # the failure said last

    def failed(self, exc: Exception) -> None:
        """One more failure: said when it is the first of a run, or of another kind."""
        kind = type(exc).__name__
        if self.since is None:
            self.since = time.monotonic()
        elif kind == self.kind:
            return
        self.kind = kind
        self.log.error(
            "%s failed: %s: %s (retried at each tick; said once while it lasts)",
            self.what, kind, exc, exc_info=traceback_of(exc),
        )  # fmt: skip

    def worked(self) -> None:
        """A pass that worked: the end of a run of failures, if there was one, is said."""
        if self.since is not None:
            lasted, self.since, self.kind = time.monotonic() - self.since, None, ""
            self.log.warning("%s works again, after %.0f s of failures", self.what, lasted)
