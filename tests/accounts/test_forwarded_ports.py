"""The per-address sign-in limits behind a proxy that writes the client's port beside its
address in X-Forwarded-For (Azure Application Gateway: `203.0.113.7:50123`): the client is
counted by its address, not by each connection's port."""

from __future__ import annotations

import httpx
import pytest

from tests.accounts.conftest import BoxClient, ServerFactory

pytestmark = pytest.mark.timeout(120)


def test_a_forwarded_address_with_a_port_is_counted_by_its_address(
    box_factory: ServerFactory,
) -> None:
    auth = {"otp_requests_per_address": 3}
    client = BoxClient(box_factory(server={"proxies_count": 1}, auth=auth), None)

    def ask_from(address: str, email: str) -> httpx.Response:
        return client.http.post(
            "/api/v1/auth/otp/request", json={"email": email}, headers={"x-forwarded-for": address}
        )

    try:
        for port in (50001, 50002, 50003):
            answer = ask_from(f"192.0.2.7:{port}", f"port-{port}@example.com")
            assert answer.status_code == 200, answer.text
        late = ask_from("192.0.2.7:50004", "port-late@example.com")
        assert late.status_code == 429, late.text
        assert ask_from("192.0.2.7", "port-bare@example.com").status_code == 429
        assert ask_from("192.0.2.8:50001", "port-late@example.com").status_code == 200
        # an IPv6 client written with its port: its /64, as without one
        for n in range(1, 4):
            answer = ask_from(f"[2001:db8:1:2::{n}]:443", f"v6port-{n}@example.com")
            assert answer.status_code == 200, answer.text
        assert ask_from("2001:db8:1:2::9", "v6port-late@example.com").status_code == 429
    finally:
        client.close()
