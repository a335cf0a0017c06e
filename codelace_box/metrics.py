"""The Prometheus metrics of serve: the families, what records into them, and the scrape.

Labels are bounded: route (the route's pattern), status class, model and provider (catalog
names the operator chose), outcome and error code (the box's own words); never a user, a key
or anything a client typed. With several workers, `serve` points PROMETHEUS_MULTIPROC_DIR at a
private folder before the workers start (`enable_multiprocess`), so every worker writes its
values there and a scrape on any worker sums them all (prometheus_client's multiprocess mode).
One worker keeps the plain in-memory values (cheaper on the hot path).

Where an increment goes (inside a write, on the serving loop's thread, elsewhere) is
metric_counting.py's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from codelace_box import OWNED_METRICS_ENV, metric_files, metric_fold, metrics_folders
from codelace_box.metric_counting import (  # noqa: F401 (theirs, named here as before)
    FLUSH_SEC,
    MULTIPROC_ENV,
    Children,
    Increment,
    count,
    counted_on_commit,
    counting,
    flush,
    stop_summing,
    sum_on_this_thread,
)

metric_files.install()  # before the families below make their first values
# One worker scrapes the families several do (their multiprocess view has neither): no
# `*_created` gauge beside each labelled counter and histogram (a second series of each, a
# timestamp), no Python or process families that would come and go with --workers.
disable_created_metrics()  # before the families below make their first children
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    with contextlib.suppress(KeyError):  # unregistered already (the module loaded again)
        REGISTRY.unregister(_collector)
CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# the box's own time: about a millisecond a call, more in a long stream (each event's work)
OVERHEAD_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
)  # fmt: skip
STATUS_CLASSES = {n: f"{n}xx" for n in range(1, 6)}

HTTP_REQUESTS = Counter(
    "codelace_http_requests", "HTTP requests answered, by route, status and status class.",
    ["route", "status", "status_class"],
)  # fmt: skip
REFUSALS = Counter(
    "codelace_refusals", "Requests refused before any upstream call (402, 404, 429), by code.",
    ["status", "code"],
)  # fmt: skip
INFERENCE = Counter(
    "codelace_inference_requests", "Settled inference calls by model, provider and outcome.",
    ["model", "provider", "outcome"],
)  # fmt: skip
TOKENS = Counter(
    "codelace_tokens", "Tokens metered, by model, provider and kind (input includes the cache).",
    ["model", "provider", "kind"],
)  # fmt: skip
COST = Counter(
    "codelace_cost_usd", "What users were charged, in USD, by model and provider.",
    ["model", "provider"],
)  # fmt: skip
UPSTREAM_ERRORS = Counter(
    "codelace_upstream_errors",
    "Failed upstream attempts (those a retry on another key hid included), by provider and code.",
    ["provider", "code"],
)  # fmt: skip
FIRST_BYTE = Histogram(
    "codelace_upstream_first_byte_seconds", "From sending to an upstream to its answer's head.",
    ["provider"], buckets=LATENCY_BUCKETS,
)  # fmt: skip
TOTAL = Histogram(
    "codelace_inference_duration_seconds", "Whole inference requests, from arrival to last byte.",
    ["route"], buckets=LATENCY_BUCKETS,
)  # fmt: skip
OVERHEAD = Histogram(
    "codelace_overhead_seconds",
    "The box's own time in an inference request: the total less the time spent waiting on "
    "the upstream (and, streaming, on the client to take the bytes).",
    ["route"], buckets=OVERHEAD_BUCKETS,
)  # fmt: skip
SIGN_IN_MAILS = Counter(
    "codelace_sign_in_mails", "Sign-in code mails by outcome: sent, or why not.", ["outcome"]
)
LOG_LINES_DROPPED = Counter(
    "codelace_log_lines_dropped", "Log lines dropped: the log's reader stalled (or was gone)."
)
ACTIVE_STREAMS = Gauge(
    "codelace_active_streams", "Streams being relayed now.", multiprocess_mode="livesum"
)


http_requests: Children[Counter] = Children(HTTP_REQUESTS)
refusals: Children[Counter] = Children(REFUSALS)
inference: Children[Counter] = Children(INFERENCE)
tokens: Children[Counter] = Children(TOKENS)
cost: Children[Counter] = Children(COST)
upstream_errors: Children[Counter] = Children(UPSTREAM_ERRORS)
first_byte: Children[Histogram] = Children(FIRST_BYTE)
total: Children[Histogram] = Children(TOTAL)
overhead: Children[Histogram] = Children(OVERHEAD)
sign_in_mails: Children[Counter] = Children(SIGN_IN_MAILS)


# The codes an upstream failure is counted under: the box's own (errors.py, gateway/,
# providers/: a test keeps this list in step) and the error types Anthropic and OpenAI
# document for their streams. A stream's error event names its code itself, and an Anthropic-
# or OpenAI-compatible upstream (a proxy, a local server) may choose any word there, a new one
# each time: each would make a series of its own, so any other word counts as upstream_error.
UPSTREAM_ERROR_CODES = frozenset({
    "bad_upstream_reply", "client_closed", "config_error", "conflict", "content_refused",
    "context_length_exceeded", "database_newer", "field_not_allowed", "insufficient_credits",
    "internal_error", "invalid_api_key", "invalid_model", "invalid_request", "key_limit_reached",
    "model_not_found", "not_found", "output_cap", "payload_too_large", "permission_denied",
    "provider_key_rejected", "provider_out_of_credit", "provider_unavailable", "rate_limited",
    "server_error", "service_unavailable", "upstream_error", "upstream_overloaded",
    "upstream_rejected", "upstream_timeout", "upstream_too_large", "upstream_unreachable",
    "upstream_redirect", "unsupported_content_encoding", "advisor_not_in_catalog",
    "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
    "request_too_large", "rate_limit_error", "api_error", "overloaded_error", "billing_error",
    "timeout_error",
    "rate_limit_exceeded", "insufficient_quota", "invalid_prompt",
})  # fmt: skip


def upstream_error_code(code: str) -> str:
    """The code label of a failed upstream call: a known code, `upstream_NNN` (an upstream's
    refusal by its status), else upstream_error (see UPSTREAM_ERROR_CODES)."""
    status = code.removeprefix("upstream_")
    if code in UPSTREAM_ERROR_CODES or (status.isascii() and status.isdigit() and len(status) == 3):
        return code
    return "upstream_error"


def status_class(status: int) -> str:
    """'2xx' for 200 and so on."""
    return STATUS_CLASSES.get(status // 100, "other")


def enable_multiprocess() -> str:
    """Before workers start (in the main process): a private folder for every worker's values,
    named in the environment the workers inherit, this process recorded as its owner (for
    metrics_folders.remove_abandoned); returns it (remove it with `cleanup`)."""
    folder = tempfile.mkdtemp(prefix=metrics_folders.PREFIX)
    metrics_folders.record_owner(folder)
    os.environ[MULTIPROC_ENV] = os.environ[OWNED_METRICS_ENV] = folder
    return folder


def supervisor_drop_counter() -> Callable[[float], None]:
    """In serve's supervisor, once `enable_multiprocess` named the folder: an `inc` for its own
    dropped log lines that every worker's scrape reads (its LOG_LINES_DROPPED was made before
    the folder was named, so its value lives in its memory only, where no scrape looks)."""
    from prometheus_client.values import MultiProcessValue

    family: Any = LOG_LINES_DROPPED
    value = MultiProcessValue()(
        "counter", family._name, family._name + "_total", (), (), family._documentation
    )
    return value.inc


def remove_abandoned_folders() -> None:
    """At serve's start: remove the folders of serve processes killed before their cleanup
    (SIGKILL), never one whose box still runs (metrics_folders)."""
    for folder in metrics_folders.remove_abandoned():
        logging.getLogger("codelace_box.server").info(
            "removed %s, the metrics folder of a serve process that is gone", folder
        )


def cleanup(folder: str) -> None:
    """Remove the workers' values folder once serve stops."""
    shutil.rmtree(folder, ignore_errors=True)
    for name in (MULTIPROC_ENV, OWNED_METRICS_ENV):
        if os.environ.get(name) == folder:
            del os.environ[name]


def forget_worker(pid: int) -> None:
    """A worker that died (in the main process, before it is replaced): its live gauges (the
    streams it relayed) leave the scrape; its counters stay, as what they counted happened,
    folded with those of the workers dead before it (metric_fold.py)."""
    if folder := os.environ.get(MULTIPROC_ENV):
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(pid)
        try:
            metric_fold.fold_dead_worker(folder, pid)
        except Exception as exc:  # its files stay (counted, only not folded); the supervisor
            # must go on replacing workers whatever a values file holds
            logging.getLogger("codelace_box.metrics").warning(
                "could not fold the metrics of dead worker %d: %s", pid, exc
            )


class _HoldsCollector(Collector):
    """Open holds (requests in flight with credit reserved), read from the database at scrape
    time, so the figure covers every worker and every box on the database; and whether the
    database answered that read (without it, the scrape goes on without the holds)."""

    def __init__(self, read: Callable[[], tuple[int, int] | None]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        read = self._read()
        yield GaugeMetricFamily(
            "codelace_database_up", "1 if the database answered this scrape, else 0.",
            value=0 if read is None else 1,
        )  # fmt: skip
        if read is None:
            return
        held, nanos = read
        yield GaugeMetricFamily("codelace_open_holds", "Open holds (reservations).", value=held)
        yield GaugeMetricFamily(
            "codelace_open_holds_usd", "Credit reserved by open holds, in USD.", value=nanos / 1e9
        )


def scrape(read_holds: Callable[[], tuple[int, int] | None]) -> bytes:
    """The Prometheus text of every worker's metrics plus the open holds (this thread's sums
    handed over first)."""
    flush()
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        metric_fold.FoldingCollector(registry)
    else:
        registry = REGISTRY
    holds = _HoldsCollector(read_holds)
    if registry is REGISTRY:
        return generate_latest(REGISTRY) + generate_latest(_single(holds))
    registry.register(holds)
    return generate_latest(registry)


def _single(collector: Collector) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry
