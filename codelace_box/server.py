"""The HTTP server: create_app(config) builds the Sanic app; serve() runs it (1 or N workers).

The list of blueprints below is every route family of the product, in one visible place.
"""

from __future__ import annotations

import logging
import os
import socket
import weakref
from functools import partial
from typing import Any

from sanic import Request, Sanic
from sanic.http import Http
from sanic.response import HTTPResponse
from sanic.worker.loader import AppLoader

from codelace_box.accounts.mailer import build_mailer
from codelace_box.accounts.mailer import startup_notice as mail_startup_notice
from codelace_box.api import (
    accounts,
    customer,
    embeddings,
    inference,
    messages,
    public,
    responses,
    stripe,
)
from codelace_box.api.common import new_request_id
from codelace_box.api.errors import render_error
from codelace_box.config import Config, ensure_secret_key
from codelace_box.db.core import close_database, open_database
from codelace_box.db.migrate import migrate
from codelace_box.errors import ConfigError
from codelace_box.stopping import check_sanic_hooks, install_supervisor, watch_worker_stops

APP_NAME = "codelace_box"
BLUEPRINTS = [
    public.bp,
    accounts.bp,
    customer.bp,
    inference.bp,
    messages.bp,
    responses.bp,
    embeddings.bp,
    stripe.bp,
]
log = logging.getLogger("codelace_box")


def sanic_settings(config: Config) -> dict[str, Any]:
    """Sanic's own settings, derived from ours."""
    return {
        "REQUEST_MAX_SIZE": config.server.max_body_bytes,
        "RESPONSE_TIMEOUT": max(3600, int(config.gateway.read_timeout_sec) + 60),
        "REQUEST_TIMEOUT": 60,
        "KEEP_ALIVE_TIMEOUT": 75,
        "FALLBACK_ERROR_FORMAT": "json",
        "GRACEFUL_SHUTDOWN_TIMEOUT": 15.0,
        "NOISY_EXCEPTIONS": False,
        "ACCESS_LOG": False,
        "AUTO_RELOAD": False,
        "MOTD": False,
    } | ({"PROXIES_COUNT": config.server.proxies_count} if config.server.proxies_count else {})


def create_app(config: Config) -> Sanic:
    """The Sanic app for a configuration (one per worker process)."""
    app = Sanic(APP_NAME, env_prefix="CODELACE_SANIC_")
    app.config.update(sanic_settings(config))
    app.ctx.config = config
    for blueprint in BLUEPRINTS:
        app.blueprint(blueprint)
    app.exception(Exception)(render_error)
    app.on_request(_assign_request_id, priority=1000)
    app.on_response(_add_request_id)
    watch_worker_stops(app)
    app.before_server_start(_open_resources)
    app.before_server_stop(_begin_draining)
    app.after_server_stop(_close_resources)
    app.ctx.draining = False
    app.ctx.in_flight = weakref.WeakSet()
    return app


async def _assign_request_id(request: Request) -> None:
    request.ctx.request_id = new_request_id()
    request.app.ctx.in_flight.add(request)


async def _add_request_id(request: Request, response: HTTPResponse) -> None:
    request_id = getattr(request.ctx, "request_id", None) or new_request_id()
    response.headers["x-request-id"] = request_id
    if request.app.ctx.draining and isinstance(request.stream, Http):
        request.stream.keep_alive = False  # answer with `connection: close`, then let go


async def _begin_draining(app: Sanic) -> None:
    """On SIGTERM: requests in flight finish; their connections then close, not idle on."""
    app.ctx.draining = True
    for request in list(app.ctx.in_flight):
        if isinstance(request.stream, Http):  # None once its response is done
            request.stream.keep_alive = False


async def _open_resources(app: Sanic) -> None:
    config: Config = app.ctx.config
    configure_logging()  # worker processes start without our log handler
    app.ctx.db = open_database(config.database.target)
    app.ctx.secret_key = ensure_secret_key(config)
    app.ctx.mailer = build_mailer(config.email)
    for hook in STARTUP_HOOKS:
        await hook(app)


async def _close_resources(app: Sanic) -> None:
    for hook in SHUTDOWN_HOOKS:
        await hook(app)
    close_database()


# Feature packages that need per-worker resources (HTTP client, mailer) add hooks here.
STARTUP_HOOKS: list[Any] = [inference.start_gateway]
SHUTDOWN_HOOKS: list[Any] = [inference.stop_gateway]


def prepare_database(config: Config) -> list[int]:
    """Run once in the main process before serving: migrate, release holds left by a crash."""
    from codelace_box.gateway.metering import release_orphaned_holds

    db = open_database(config.database.target)
    try:
        applied = migrate(db)
        released = release_orphaned_holds()
        if released:
            log.warning("released %d holds left by an earlier stop", released)
        ensure_secret_key(config)
    finally:
        close_database()
    return applied


def configure_logging() -> None:
    """Our log lines (logger `codelace_box.*`) to stderr with time and level, once per process.

    Only our own logger gets a handler: Sanic's loggers keep theirs, so nothing is printed
    twice. Workers call it too (in _open_resources), so their lines are not lost.
    """
    logger = logging.getLogger("codelace_box")
    if any(getattr(h, "_codelace", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._codelace = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(os.environ.get("CODELACE_LOG_LEVEL", "INFO").upper())
    logger.propagate = False


def check_address(host: str, port: int) -> None:
    """Fail with one clear line when the listen address is taken or not ours to bind."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"cannot listen on {host}:{port}: {reason}") from None


def serve(config: Config) -> None:
    """Serve HTTP on the configured address with the configured number of workers."""
    check_sanic_hooks()
    check_address(config.server.host, config.server.port)
    configure_logging()
    prepare_database(config)  # first: a database it cannot use is the one line on stderr
    console_mail = config.email.backend == "console"
    log.log(logging.WARNING if console_mail else logging.INFO, mail_startup_notice(config.email))
    loader = AppLoader(factory=partial(create_app, config))
    app = loader.load()
    workers = config.server.workers
    app.prepare(
        host=config.server.host,
        port=config.server.port,
        workers=workers,
        single_process=workers == 1,
        access_log=False,
        auto_reload=False,
        motd=False,
    )
    log.info("codelace-box serving on %s (%d worker(s))", config.server.base_url, workers)
    if workers == 1:
        Sanic.serve_single(primary=app)
    else:
        install_supervisor()
        Sanic.serve(primary=app, app_loader=loader)
