"""The HTTP server: create_app(config) builds the Sanic app; serve() runs it (1 or N workers).

The list of blueprints below is every route family of the product, in one visible place.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from functools import partial
from pathlib import Path
from typing import Any

from sanic import Blueprint, Request, Sanic
from sanic.exceptions import RequestCancelled
from sanic.http import Http
from sanic.response import HTTPResponse
from sanic.worker.loader import AppLoader

from codelace_box import metrics
from codelace_box.accounts.mailer import build_mailer
from codelace_box.accounts.mailer import startup_level as mail_startup_level
from codelace_box.accounts.mailer import startup_notice as mail_startup_notice
from codelace_box.api import (
    accounts,
    customer,
    embeddings,
    inference,
    messages,
    observe,
    portal,
    portal_data,
    public,
    responses,
    stripe,
)
from codelace_box.api.bodies import install as read_bodies_of_known_clients
from codelace_box.api.common import new_request_id
from codelace_box.api.cors import add_cors_headers, install_cors
from codelace_box.api.errors import render_error
from codelace_box.audit import migrate_recorded
from codelace_box.body_request import BodyRequest
from codelace_box.config import Config, ensure_secret_key
from codelace_box.config.secret import readable_secrets_notice, secret_key_path
from codelace_box.db.core import close_database, open_database
from codelace_box.db.lead import Lead, lead_file
from codelace_box.db.lookups import start_lookup_thread, stop_lookup_thread
from codelace_box.db.offload import start_db_thread, start_write_thread, stop_db_thread
from codelace_box.db.openlock import OpenMarker, hold_open
from codelace_box.db.sqlite_file import empty_sqlite_file, made_database
from codelace_box.db.wal import checkpoint_loop, defer_checkpoints
from codelace_box.errors import ConfigError
from codelace_box.http_guard import DEFAULT_SEND_TIMEOUT, GUARD_HOOKS, GuardedProtocol
from codelace_box.listen_setup import check_address, listen_host, raise_open_files_limit
from codelace_box.live_refs import LiveRefs
from codelace_box.logformat import REQUEST_ID
from codelace_box.logformat import configure_logging as setup_logging
from codelace_box.logwriter import count_drops_with, unblock_log_output
from codelace_box.reports.history import retention_loop
from codelace_box.reports.refusals import RefusalTally, flush_refusals_forever
from codelace_box.sanic_config import SanicConfig
from codelace_box.sanic_env import check_sanic_env
from codelace_box.sanic_logging import sanic_log_config
from codelace_box.stopping import (
    SANIC_HOOKS,
    StopSafeSanic,
    check_sanic_hooks,
    stopped_before_serving,
    watch_worker_stops,
)
from codelace_box.supervisor import install_supervisor
from codelace_box.upkeep.watch import start_upkeep, stop_upkeep

APP_NAME = "codelace_box"
ENV_PREFIX = "CODELACE_SANIC_"
BLUEPRINTS = [
    public.bp,
    accounts.bp,
    customer.bp,
    inference.bp,
    messages.bp,
    responses.bp,
    embeddings.bp,
    stripe.bp,
    observe.bp,
    portal.bp,
    portal_data.bp,
]
PORTAL_BLUEPRINTS = (portal.bp, portal_data.bp)  # left out when portal.enabled is false
log = logging.getLogger("codelace_box")
REFUSAL_FLUSH_SEC = 5.0
# A stop's one window (Sanic's GRACEFUL_SHUTDOWN_TIMEOUT): requests in flight are answered and
# streams relayed meanwhile, and the calls whose clients left finish in the same window
# (inference.stop_gateway); whatever still runs at its end is cut and charged what the upstream
# sent of it. Within systemd's TimeoutStopSec of the README's unit, as the supervisor's wait is.
STOP_WINDOW_SEC = 30.0


def sanic_settings(config: Config) -> dict[str, Any]:
    """Sanic's own settings, derived from ours."""
    return {
        "REQUEST_MAX_SIZE": config.server.max_body_bytes,
        "RESPONSE_TIMEOUT": max(3600, int(config.gateway.read_timeout_sec) + 60),
        "REQUEST_TIMEOUT": 60,
        "KEEP_ALIVE_TIMEOUT": 75,
        "SEND_TIMEOUT": DEFAULT_SEND_TIMEOUT,  # a client taking none of its answer (http_guard.py)
        "FALLBACK_ERROR_FORMAT": "json",
        "GRACEFUL_SHUTDOWN_TIMEOUT": STOP_WINDOW_SEC,
        "NOISY_EXCEPTIONS": False,
        "ACCESS_LOG": False,
        "AUTO_RELOAD": False,
        "MOTD": False,
    } | ({"PROXIES_COUNT": config.server.proxies_count} if config.server.proxies_count else {})


def create_app(config: Config) -> Sanic:
    """The Sanic app for a configuration (one per worker process)."""
    log_config = sanic_log_config(config)
    sanic_config = SanicConfig(env_prefix=ENV_PREFIX)
    app = StopSafeSanic(
        APP_NAME, config=sanic_config, log_config=log_config, request_class=BodyRequest
    )
    if os.environ.get("SANIC_WORKER_NAME"):  # a worker: its "Starting worker" line on
        unblock_log_output()
    app.config.update(sanic_settings(config))
    app.config.load_environment_vars(ENV_PREFIX)  # CODELACE_SANIC_<NAME> still wins (tests)
    app.ctx.config = config
    for blueprint in _served_blueprints(config):
        app.blueprint(blueprint)
    install_cors(app, config.server.cors_allow_origins)  # OPTIONS beside the routes it covers
    read_bodies_of_known_clients(app)
    # RequestCancelled: Sanic's word for a client that left (a CancelledError, so not an
    # Exception, though Sanic's handler lookup takes it): a 499 in the logs, not a 500
    app.exception(Exception, RequestCancelled)(render_error)  # type: ignore[arg-type]
    app.on_request(_assign_request_id, priority=1000)
    app.on_response(_add_request_id)
    app.ctx.refusals = RefusalTally()
    watch_worker_stops(app)
    app.before_server_start(_open_resources)
    app.before_server_stop(_begin_draining)
    app.after_server_stop(_close_resources)
    app.ctx.draining = False
    app.ctx.in_flight = LiveRefs()  # (a WeakSet: about 2,000 instructions a request more)
    return app


def _served_blueprints(config: Config) -> list[Blueprint]:
    """BLUEPRINTS less those switched off: the portal's (portal.enabled) and /metrics
    (metrics.enabled). A route switched off is no route: its 404 is an unmatched path's, never
    a refusal in the tally (a stale Prometheus scraping a box with metrics off)."""
    off = set() if config.portal.enabled else set(PORTAL_BLUEPRINTS)
    if not config.metrics.enabled:
        off.add(observe.bp)
    return [blueprint for blueprint in BLUEPRINTS if blueprint not in off]


def _assign_request_id(request: Request) -> None:
    request.ctx.started = time.perf_counter()
    request_id = request.ctx.request_id = new_request_id()
    REQUEST_ID.set(request_id)  # every line logged for this request names it (logformat.py)
    request.app.ctx.in_flight.add(request_id, request)


def _add_request_id(request: Request, response: HTTPResponse) -> None:
    request_id = getattr(request.ctx, "request_id", None)
    if request_id is None:  # a request Sanic ended before our middleware (a client gone)
        request_id = request.ctx.request_id = new_request_id()  # (its access line names it)
    response.headers["x-request-id"] = request_id
    if "anthropic-version" in request.headers:  # the anthropic SDK reads Anthropic's header
        response.headers["request-id"] = request_id  # (`_request_id`, `error.request_id`)
    origin = request.headers.get("origin")  # only browsers send one: CORS costs others nothing
    if origin is not None:
        add_cors_headers(request, response, origin)
    if response.status != 200 or not getattr(request.ctx, "streaming", False):
        observe.finish_request(request, response)  # a stream's is when it ends (answer())
    if request.app.ctx.draining and isinstance(request.stream, Http):
        request.stream.keep_alive = False  # answer with `connection: close`, then let go


async def _begin_draining(app: Sanic) -> None:
    """On SIGTERM: requests in flight finish; their connections then close, not idle on."""
    app.ctx.draining = True
    app.ctx.stop_ends_at = time.monotonic() + app.config.GRACEFUL_SHUTDOWN_TIMEOUT
    for request in list(app.ctx.in_flight):
        if isinstance(request.stream, Http):  # None once its response is done
            request.stream.keep_alive = False


async def _open_resources(app: Sanic) -> None:
    config: Config = app.ctx.config
    configure_logging(config)  # worker processes start without our log handler
    unblock_log_output()  # ours and Sanic's: a stalled log reader never stops this loop
    count_drops_with(metrics.LOG_LINES_DROPPED.inc)
    app.ctx.db = open_database(config.database.target)
    start_db_thread()  # reads that grow with history run there (db/offload.py)
    start_write_thread()  # PostgreSQL: the hot path's group commit runs there
    start_lookup_thread()  # PostgreSQL: the requests' key lookups, batched (db/lookups.py)
    defer_checkpoints()  # SQLite: a thread of its own checkpoints the WAL (db/wal.py)
    app.ctx.secret_key = ensure_secret_key(config)
    app.ctx.mailer = build_mailer(config.email)
    for hook in STARTUP_HOOKS:
        await hook(app)
    metrics.sum_on_this_thread(asyncio.get_running_loop())
    _tune_garbage_collector()


# The collector's youngest generation is collected after this many more container objects
# than were freed (Python's default: 700). 64 requests in flight hold a few thousand objects,
# so at 700 a collection (about 0.2 ms, walking them) ran every 20-25 requests: 8-12 us a
# request, 3% of its CPU. Objects freed by their reference counts (nearly all a request makes)
# never count toward it; what waits for a collection is what cycles keep alive, a few MB at most.
YOUNG_COLLECTION_AFTER = 20_000


def _tune_garbage_collector() -> None:
    """What starting made (modules, the app, its routes) lives as long as the process: out of
    the garbage collector's sight, so its full collections, which stop the event loop, walk
    only what serving made since (they took 40-130 ms with everything in sight). Its young
    collections wait for YOUNG_COLLECTION_AFTER objects."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_AFTER, middle, old)


async def _close_resources(app: Sanic) -> None:
    for hook in SHUTDOWN_HOOKS:
        await hook(app)
    app.ctx.refusals.flush_at_stop()
    metrics.stop_summing()
    stop_lookup_thread()
    stop_db_thread()
    close_database()


async def _start_retention(app: Sanic) -> None:
    """Delete old usage rows (usage.retention_days > 0) and old per-minute rollups (always) in
    small batches, off the loop: in the one worker (and box) that leads it."""
    config: Config = app.ctx.config
    lead = Lead(lead_file(config.database, "retention"), "retention")  # among boxes: that role
    app.ctx.retention = asyncio.create_task(retention_loop(config.usage.retention_days, lead=lead))


async def _stop_retention(app: Sanic) -> None:
    await _cancel(getattr(app.ctx, "retention", None))


async def _start_checkpoints(app: Sanic) -> None:
    """SQLite: WAL checkpoints on a thread of their own, off the loop (db/wal.py)."""
    postgres = app.ctx.config.database.is_postgres
    app.ctx.checkpoints = None if postgres else asyncio.create_task(checkpoint_loop())


async def _stop_checkpoints(app: Sanic) -> None:
    await _cancel(getattr(app.ctx, "checkpoints", None))


async def _start_refusal_flush(app: Sanic) -> None:
    """Per worker: write the refusals counted in memory every REFUSAL_FLUSH_SEC."""
    app.ctx.refusal_flush = asyncio.get_running_loop().create_task(
        flush_refusals_forever(app.ctx.refusals, REFUSAL_FLUSH_SEC)
    )


async def _stop_refusal_flush(app: Sanic) -> None:
    await _cancel(getattr(app.ctx, "refusal_flush", None))


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# Feature packages that need per-worker resources (HTTP client, mailer) add hooks here.
STARTUP_HOOKS: list[Any] = [
    inference.start_gateway,
    _start_retention,
    _start_refusal_flush,
    _start_checkpoints,
    start_upkeep,
]
SHUTDOWN_HOOKS: list[Any] = [
    stop_upkeep,
    _stop_retention,
    inference.stop_gateway,
    _stop_refusal_flush,
    _stop_checkpoints,
]


def prepare_database(config: Config) -> list[int]:
    """Once in the main process before serving: migrate, release holds left by a crash,
    refuse a stripe.currency that top-ups were not paid in (billing/currencies.py)."""
    from codelace_box.billing.currencies import refuse_mixed_currency
    from codelace_box.catalog.providers import server_secret
    from codelace_box.db.migrate import upgrade_notice
    from codelace_box.gateway.holds import release_orphaned_holds

    new_database = not config.database.is_postgres and not Path(config.database.path).exists()
    empty_file = not config.database.is_postgres and empty_sqlite_file(config.database.path)
    new_secret = not config.server.secret_key and not secret_key_path(config).exists()
    db = open_database(config.database.target)
    try:
        applied = migrate_recorded(db)
        if notice := upgrade_notice(applied):
            log.warning("%s", notice)
        refuse_mixed_currency(config.stripe)
        if released := release_orphaned_holds():
            log.warning("released %d holds left by an earlier stop", released)
        server_secret(config)  # none made over provider keys stored with another
    finally:
        close_database()
    if (new_database or empty_file) and config.database.path != ":memory:":  # a first start?
        log.warning("%s (if your data should be there, stop and check database.path and the "
                    "disk it is on)", made_database(config.database.path, empty_file))  # fmt: skip
    if new_secret:
        log.warning("generated a new server secret in %s (keep a copy: it encrypts the "
                    "provider keys)", secret_key_path(config))  # fmt: skip
    return applied


def configure_logging(config: Config | None = None) -> None:
    """Our log lines to stderr, in the configured format and level, once per process; not
    Sanic's advice, at a terminal, to run in `--debug` or `--dev` mode (options of Sanic's own
    command line, which `serve` does not take)."""
    os.environ.setdefault("SANIC_IGNORE_PRODUCTION_WARNING", "1")
    if config is None:
        setup_logging()
    else:
        setup_logging(config.log.format, config.log.level)


_OPEN_MARKERS: list[OpenMarker] = []  # held for the life of the serving process


def _refuse_a_database_in_memory(config: Config) -> None:
    """database.path ":memory:" (no config file beside which it is a file's name): the main
    process migrated one database in memory and each worker opened another, empty one (every
    request a 500, everything written lost at the stop)."""
    if not config.database.is_postgres and config.database.path == ":memory:":
        raise ConfigError(
            "database.path :memory: is a database in memory, which serve cannot share with its "
            "workers and loses at its stop: name a file (the default is data/codelace.db)"
        )


def _refuse_what_cannot_serve(config: Config) -> None:
    """Before anything starts: what it cannot serve with is one line and no serve."""
    _refuse_a_database_in_memory(config)
    check_sanic_hooks(SANIC_HOOKS + GUARD_HOOKS)
    check_sanic_env()
    check_address(listen_host(config.server.host), config.server.port)


def serve(config: Config) -> None:
    """Serve HTTP on the configured address with the configured number of workers."""
    _refuse_what_cannot_serve(config)
    configure_logging(config)
    raise_open_files_limit()
    metrics.remove_abandoned_folders()  # a supervisor killed by SIGKILL left its folder
    _OPEN_MARKERS.append(hold_open(config.database.path))  # `restore` refuses while we run
    prepare_database(config)  # first: a database it cannot use is the one line on stderr
    log.log(mail_startup_level(config.email), mail_startup_notice(config.email))
    if exposed := readable_secrets_notice(config):
        log.warning(exposed)
    loader = AppLoader(factory=partial(create_app, config))
    app = loader.load()
    unblock_log_output()  # Sanic's handlers too (the supervisor's lines)
    workers = config.server.workers
    app.prepare(
        host=listen_host(config.server.host),
        port=config.server.port,
        workers=workers,
        single_process=workers == 1,
        access_log=False,
        auto_reload=False,
        motd=False,
        protocol=GuardedProtocol,
    )
    if stopped_before_serving():  # a stop while it started: it serves nothing
        return
    if workers > 1:
        install_supervisor()  # before the line below: a stop signal after it is recorded
    log.info("codelace-box serving on %s (%d worker(s))", config.server.serving_on, workers)
    if workers == 1:
        Sanic.serve_single(primary=app)
        return
    values = metrics.enable_multiprocess()  # before the workers start: they inherit it
    count_drops_with(metrics.supervisor_drop_counter())  # its own lines, in the scrape too
    try:
        Sanic.serve(primary=app, app_loader=loader)
    finally:
        metrics.cleanup(values)
