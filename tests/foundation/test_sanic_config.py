"""Sanic's settings that its HTTP protocol reads on every request are properties of the box's
Sanic config (sanic_config.py): the values set through CODELACE_SANIC_* are the ones served."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support import TLS, ServerProcess

pytestmark = pytest.mark.timeout(90)


def test_keep_alive_set_off_closes_each_connection_after_its_answer(
    make_config: Callable[..., Path], start_server: Callable[..., ServerProcess]
) -> None:
    kept = start_server(make_config())
    closed = start_server(make_config(), env={"CODELACE_SANIC_KEEP_ALIVE": "false"})
    assert httpx.get(f"{kept.base_url}/healthz", verify=TLS).headers["connection"] == "keep-alive"
    assert httpx.get(f"{closed.base_url}/healthz", verify=TLS).headers["connection"] == "close"


def test_a_request_buffer_set_small_bounds_the_request_head(
    make_config: Callable[..., Path], start_server: Callable[..., ServerProcess]
) -> None:
    """Sanic bounds a request head by REQUEST_BUFFER_SIZE less 4 KiB: a 6 KB head passes the
    default buffer (64 KiB) and is refused (413) under an 8 KiB one."""
    usual = start_server(make_config())
    small = start_server(make_config(), env={"CODELACE_SANIC_REQUEST_BUFFER_SIZE": "8192"})
    head = {"x-padding": "p" * 6000}
    assert httpx.get(f"{usual.base_url}/healthz", headers=head, verify=TLS).status_code == 200
    assert httpx.get(f"{small.base_url}/healthz", headers=head, verify=TLS).status_code == 413
