"""Every route of the app renders Sanic's own errors as JSON, set outright (api/blueprint.py),
from a checkout as in the binary, where Sanic cannot read a handler's source to guess one."""

from __future__ import annotations

import inspect

import pytest
import sanic.mixins.routes
from sanic import Sanic

from codelace_box.api.blueprint import Blueprint
from codelace_box.config import Config
from codelace_box.server import create_app


def test_every_route_of_the_app_renders_sanics_errors_as_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Sanic, "test_mode", True)  # another test of this process made one too
    app = create_app(Config())
    try:
        routes = app.router.routes
        assert len(routes) > 40, "expected the box's routes"
        guessed = [(r.path, sorted(r.methods), r.extra.error_format) for r in routes]
        assert [route for route in guessed if route[2] != "json"] == []
    finally:
        Sanic.unregister_app(app)  # the name free for the next test of this process


def test_no_handlers_source_is_read_to_pick_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sanic's guess reads the handler's source (`inspect.getsource`); the box's routes never
    ask for it, so a handler whose source is unreadable (as in the binary) changes nothing."""
    read: list[object] = []
    real = inspect.getsource

    def getsource(target: object) -> str:
        read.append(target)
        return real(target)  # type: ignore[arg-type]

    monkeypatch.setattr(sanic.mixins.routes, "getsource", getsource)
    bp = Blueprint("probe")

    @bp.get("/probe")
    async def probe(request: object) -> None:
        return None

    assert read == []
    assert bp._future_routes and all(r.error_format == "json" for r in bp._future_routes)
