"""Rate limits of sign-in, per email and per client address, held across processes: two
`serve` processes share one database and the tests alternate between them."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count, cycle

import httpx
import pytest

from codelace_box.accounts.signin import (
    REQUESTS_PER_ADDRESS,
    REQUESTS_PER_EMAIL,
    VERIFIES_PER_ADDRESS,
    VERIFIES_PER_EMAIL,
    WINDOW_SEC,
)
from tests.accounts.conftest import BoxClient, ServerFactory, console_code

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def pair(box_factory: ServerFactory) -> Iterator[tuple[BoxClient, BoxClient]]:
    """Two processes on one database (console mail backend)."""
    first = BoxClient(box_factory(data="shared"), None)
    second = BoxClient(box_factory(data="shared"), None)
    yield first, second
    first.close()
    second.close()


@pytest.fixture(scope="module")
def accepted() -> dict[str, int]:
    """How many code requests / verifies from this address the boxes have counted so far."""
    return {"request": 0, "verify": 0}


def ask(client: BoxClient, email: str, accepted: dict[str, int]) -> httpx.Response:
    response = client.request_code(email)
    if response.status_code != 429:
        accepted["request"] += 1
    return response


def check(client: BoxClient, email: str, code: str, accepted: dict[str, int]) -> httpx.Response:
    response = client.verify(email, code)
    if response.status_code != 429:
        accepted["verify"] += 1
    return response


def assert_limited(response: httpx.Response) -> int:
    """A proper 429; returns its Retry-After."""
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "rate_limited"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW_SEC
    assert f"{retry_after} s" in error["message"]
    return retry_after


def test_a_code_asked_for_at_one_process_works_at_the_other(pair, accepted):
    first, second = pair
    assert ask(first, "roamer@example.com", accepted).status_code == 200
    code = console_code(first.server, "roamer@example.com")
    assert check(second, "roamer@example.com", code, accepted).status_code == 200


def test_code_requests_per_email_are_limited_across_processes(pair, accepted):
    email = "popular@example.com"
    boxes = cycle(pair)
    for _ in range(REQUESTS_PER_EMAIL):
        assert ask(next(boxes), email, accepted).status_code == 200
    for box in pair:
        retry_after = assert_limited(ask(box, email, accepted))
        assert retry_after >= WINDOW_SEC - 10
        assert email in box.request_code(email).json()["error"]["message"]
    # the limit is per email: another address from the same client is still served
    assert ask(pair[1], "quiet@example.com", accepted).status_code == 200


def test_verify_attempts_per_email_are_limited_across_processes(pair, accepted):
    email = "guessed@example.com"
    assert ask(pair[0], email, accepted).status_code == 200
    code = console_code(pair[0].server, email)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    boxes = cycle(pair)
    for _ in range(VERIFIES_PER_EMAIL):
        assert check(next(boxes), email, wrong, accepted).status_code == 400
    # even the right code is not checked any more: the limit comes first
    for box in pair:
        assert_limited(check(box, email, code, accepted))


def test_verify_attempts_per_address_are_limited_across_processes(pair, accepted):
    boxes = cycle(pair)
    emails = (f"nobody{i}@example.com" for i in count())
    expected_ok = VERIFIES_PER_ADDRESS - accepted["verify"]
    served = 0
    while served < expected_ok:
        response = check(next(boxes), next(emails), "123456", accepted)
        assert response.status_code == 400, response.text
        served += 1
    for box in pair:
        assert_limited(check(box, next(emails), "123456", accepted))


def test_code_requests_per_address_are_limited_across_processes(pair, accepted):
    boxes = cycle(pair)
    emails = (f"member{i}@example.com" for i in count())
    expected_ok = REQUESTS_PER_ADDRESS - accepted["request"]
    for _ in range(expected_ok):
        assert ask(next(boxes), next(emails), accepted).status_code == 200
    for box in pair:
        assert_limited(ask(box, next(emails), accepted))
    # a client cannot dodge the limit by claiming another address: no proxy is configured
    spoofed = pair[0].http.post(
        "/api/v1/auth/otp/request",
        json={"email": next(emails)},
        headers={"x-forwarded-for": "203.0.113.9"},
    )
    assert_limited(spoofed)


@pytest.mark.parametrize("how", ["config", "env"])
def test_behind_a_proxy_the_forwarded_address_is_limited(box_factory: ServerFactory, how: str):
    """With server.proxies_count = 1 (or CODELACE_SANIC_PROXIES_COUNT=1: one reverse proxy in
    front), each client address from X-Forwarded-For has its own budget."""
    if how == "config":
        server = box_factory(server={"proxies_count": 1})
    else:
        server = box_factory(env={"CODELACE_SANIC_PROXIES_COUNT": "1"})
    client = BoxClient(server, None)

    def ask_from(address: str, email: str) -> httpx.Response:
        return client.http.post(
            "/api/v1/auth/otp/request", json={"email": email}, headers={"x-forwarded-for": address}
        )

    for i in range(REQUESTS_PER_ADDRESS):
        assert ask_from("198.51.100.7", f"office{i}-{how}@example.com").status_code == 200
    assert_limited(ask_from("198.51.100.7", f"office-late-{how}@example.com"))
    assert ask_from("198.51.100.8", f"office-late-{how}@example.com").status_code == 200
    client.close()
