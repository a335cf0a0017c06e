"""/metrics without a token, behind a reverse proxy on the same machine: the proxy's socket
is the loopback, so only what the proxy says tells a scrape from outside apart from the local
Prometheus. A request that a proxy forwarded is not served unless its client's address is
judged (server.proxies_count) and found on the loopback."""

from __future__ import annotations

import httpx

from tests.gateway.conftest import Box, BoxFactory
from tests.support import TLS


def status(box: Box, **headers: str) -> int:
    return httpx.get(box.url + "/metrics", headers=headers, timeout=10, verify=TLS).status_code


def test_a_request_forwarded_by_a_proxy_the_box_was_not_told_of_is_refused(
    box_factory: BoxFactory,
) -> None:
    """The default proxies_count = 0 behind nginx (or Caddy, Traefik): every request arrives
    from 127.0.0.1, and /metrics (traffic, spend, models) was served to anyone on the
    internet, though the README promises a forwarded request from outside gets 403."""
    box = box_factory()
    assert status(box) == 200  # the local Prometheus: no proxy in between
    for forwarded in (
        {"x-forwarded-for": "203.0.113.7"},
        {"forwarded": "for=203.0.113.7;proto=https"},
        {"x-real-ip": "203.0.113.7"},  # nginx set up with this one alone
    ):
        assert status(box, **forwarded) == 403, forwarded


def test_a_proxy_that_does_not_say_who_its_client_is_does_not_pass_for_the_loopback(
    box_factory: BoxFactory,
) -> None:
    """proxies_count = 1, but a proxy that sends only X-Real-IP or Forwarded (or a request that
    skipped the outer of two proxies, with too few X-Forwarded-For entries): the box cannot
    judge the client's address, and the proxy's own loopback socket must not stand in."""
    one = box_factory(server={"proxies_count": 1})
    assert status(one) == 200  # the local Prometheus, straight to the box
    assert status(one, **{"x-forwarded-for": "127.0.0.1"}) == 200
    assert status(one, **{"x-real-ip": "203.0.113.7"}) == 403
    assert status(one, forwarded="for=203.0.113.7") == 403
    two = box_factory(server={"proxies_count": 2})
    assert status(two, **{"x-forwarded-for": "203.0.113.7"}) == 403
    assert status(two, **{"x-forwarded-for": "127.0.0.1, 10.0.0.2"}) == 200
