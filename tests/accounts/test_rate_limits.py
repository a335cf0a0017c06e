"""Rate limits of sign-in, per email and per client address, held across processes: two
`serve` processes share one database and the tests alternate between them. The limits and
their window come from the [auth] config keys; lowered ones take effect over HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import count, cycle

import httpx
import pytest

from codelace_box.accounts.ratelimit import wait_in_words
from codelace_box.config import AuthConfig
from tests.accounts.conftest import BoxClient, ServerFactory, console_code, not_the
from tests.pg_cluster import write_config_db
from tests.support import TLS

pytestmark = pytest.mark.timeout(120)
DEFAULTS = AuthConfig()  # the limits the pair of boxes runs with (no [auth] keys set)


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


@pytest.fixture(scope="module")
def address_pair(box_factory: ServerFactory) -> Iterator[tuple[BoxClient, BoxClient]]:
    """Another two processes on their own database, for the tests that use up this client
    address's whole budget: the per-email tests on `pair` pass before or after them."""
    first = BoxClient(box_factory(data="address-budget"), None)
    second = BoxClient(box_factory(data="address-budget"), None)
    yield first, second
    first.close()
    second.close()


@pytest.fixture(scope="module")
def address_accepted() -> dict[str, int]:
    """`accepted` for address_pair."""
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


def assert_limited(response: httpx.Response, window: int = DEFAULTS.rate_limit_window_sec) -> int:
    """A proper 429 of a limit with this window; returns its Retry-After."""
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error" and error["code"] == "rate_limited"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= window
    assert f"try again in {wait_in_words(retry_after)}" in error["message"]
    return retry_after


def test_a_code_asked_for_at_one_process_works_at_the_other(pair, accepted):
    first, second = pair
    assert ask(first, "roamer@example.com", accepted).status_code == 200
    code = console_code(first.server, "roamer@example.com")
    verified = check(second, "roamer@example.com", code, accepted)
    assert verified.status_code == 200, verified.text
    # a real sign-in: the key it hands out works at the process that mailed the code
    me = first.get("/api/v1/auth/me", verified.json()["api_key"])
    assert (me.status_code, me.json()["email"]) == (200, "roamer@example.com")


def test_code_requests_per_email_are_limited_across_processes(pair, accepted):
    email = "popular@example.com"
    boxes = cycle(pair)
    for _ in range(DEFAULTS.otp_requests_per_email):
        assert ask(next(boxes), email, accepted).status_code == 200
    for box in pair:
        retry_after = assert_limited(ask(box, email, accepted))
        assert retry_after >= DEFAULTS.rate_limit_window_sec - 10
        assert email in box.request_code(email).json()["error"]["message"]
    # the limit is per email: another address from the same client is still served
    assert ask(pair[1], "quiet@example.com", accepted).status_code == 200


def test_plus_addresses_share_their_mailbox_budget_of_code_mails(pair, accepted):
    """`v+1@` .. `v+5@` all reach v's inbox: together they use up its 5 code mails, and a
    6th, with any tag or none, is refused; each tagged address is still its own account."""
    boxes = cycle(pair)
    for tag in range(1, DEFAULTS.otp_requests_per_email + 1):
        assert ask(next(boxes), f"v+{tag}@plus.example", accepted).status_code == 200
    for email in ("v+6@plus.example", "v+1@plus.example", "v@plus.example"):
        limited = ask(next(boxes), email, accepted)
        assert_limited(limited)
        assert "v@plus.example" in limited.json()["error"]["message"]
    # another mailbox of the same domain has its own budget
    assert ask(pair[0], "w+1@plus.example", accepted).status_code == 200
    # the full address stays the identity: v+5's code signs in v+5@, its own account
    code = console_code(pair[0].server, "v+5@plus.example")
    verified = check(pair[1], "v+5@plus.example", code, accepted)
    assert verified.status_code == 200, verified.text
    me = pair[0].get("/api/v1/auth/me", verified.json()["api_key"])
    assert me.json()["email"] == "v+5@plus.example"


def test_verify_attempts_per_email_are_limited_across_processes(pair, accepted):
    email = "guessed@example.com"
    assert ask(pair[0], email, accepted).status_code == 200
    code = console_code(pair[0].server, email)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    boxes = cycle(pair)
    for _ in range(DEFAULTS.otp_verifies_per_email):
        assert check(next(boxes), email, wrong, accepted).status_code == 400
    # even the right code is not checked any more: the limit comes first
    for box in pair:
        assert_limited(check(box, email, code, accepted))


def test_verify_attempts_per_address_are_limited_across_processes(address_pair, address_accepted):
    pair, accepted = address_pair, address_accepted
    boxes = cycle(pair)
    emails = (f"nobody{i}@example.com" for i in count())
    expected_ok = DEFAULTS.otp_verifies_per_address - accepted["verify"]
    served = 0
    while served < expected_ok:
        response = check(next(boxes), next(emails), "123456", accepted)
        assert response.status_code == 400, response.text
        served += 1
    for box in pair:
        assert_limited(check(box, next(emails), "123456", accepted))


def test_code_requests_per_address_are_limited_across_processes(address_pair, address_accepted):
    pair, accepted = address_pair, address_accepted
    boxes = cycle(pair)
    emails = (f"member{i}@example.com" for i in count())
    expected_ok = DEFAULTS.otp_requests_per_address - accepted["request"]
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

    for i in range(DEFAULTS.otp_requests_per_address):
        assert ask_from("198.51.100.7", f"office{i}-{how}@example.com").status_code == 200
    assert_limited(ask_from("198.51.100.7", f"office-late-{how}@example.com"))
    assert ask_from("198.51.100.8", f"office-late-{how}@example.com").status_code == 200
    client.close()


def test_the_defaults_are_the_documented_limits():
    """5 code requests per email and 50 per address, 10 and 100 verifies, per 10 minutes."""
    limits = (
        DEFAULTS.otp_requests_per_email,
        DEFAULTS.otp_requests_per_address,
        DEFAULTS.otp_verifies_per_email,
        DEFAULTS.otp_verifies_per_address,
        DEFAULTS.rate_limit_window_sec,
    )
    assert limits == (5, 50, 10, 100, 600)


LOWERED = {
    "otp_requests_per_email": 2,
    "otp_requests_per_address": 4,
    "otp_verifies_per_email": 2,
    "otp_verifies_per_address": 3,
    "rate_limit_window_sec": 120,
}


def test_lowered_limits_from_the_config_file_take_effect(box_factory: ServerFactory):
    client = BoxClient(box_factory(auth=LOWERED), None)
    # per email: the third code request for one address within the window is refused
    assert [client.request_code("few@example.com").status_code for _ in range(2)] == [200, 200]
    limited = client.request_code("few@example.com")
    assert assert_limited(limited, window=120) >= 110
    assert "few@example.com" in limited.json()["error"]["message"]
    # per client address: two more addresses fill its budget of 4, the fifth is refused
    assert client.request_code("other1@example.com").status_code == 200
    assert client.request_code("other2@example.com").status_code == 200
    assert_limited(client.request_code("other3@example.com"), window=120)
    # verifies: 2 per email (even the right code is not checked then), 3 per address
    right = console_code(client.server, "few@example.com")
    for wrong in (not_the(right), not_the(right, 2)):
        assert client.verify("few@example.com", wrong).status_code == 400
    assert_limited(client.verify("few@example.com", right), window=120)
    other = not_the(console_code(client.server, "other1@example.com"))
    assert client.verify("other1@example.com", other).status_code == 400
    assert_limited(client.verify("other2@example.com", "000000"), window=120)
    client.close()


def test_a_limit_and_window_from_the_environment_take_effect_and_the_window_slides(
    box_factory: ServerFactory,
):
    env = {"CODELACE_AUTH_OTP_REQUESTS_PER_EMAIL": "1", "CODELACE_AUTH_RATE_LIMIT_WINDOW_SEC": "3"}
    client = BoxClient(box_factory(env=env), None)
    assert client.request_code("once@example.com").status_code == 200
    retry_after = assert_limited(client.request_code("once@example.com"), window=3)
    time.sleep(retry_after)  # Retry-After is rounded up: the slot is free by then
    assert client.request_code("once@example.com").status_code == 200
    client.close()


def test_concurrent_wrong_codes_at_two_processes_get_five_tries_in_all(box_factory: ServerFactory):
    """20 wrong guesses at once, spread over two processes (the verify limit lifted so only the
    code's own count stops them): the code takes exactly 5 wrong tries, then is dead."""
    lifted = {"otp_verifies_per_email": 1000, "otp_verifies_per_address": 1000}
    boxes = [BoxClient(box_factory(data="race", auth=lifted), None) for _ in range(2)]
    email = "raced@example.com"
    assert boxes[0].request_code(email).status_code == 200
    code = console_code(boxes[0].server, email)
    guesses = [f"{(int(code) + n) % 1_000_000:06d}" for n in range(1, 21)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda n: boxes[n % 2].verify(email, guesses[n]), range(20)))
    assert {a.status_code for a in answers} == {400}
    codes = [a.json()["error"]["code"] for a in answers]
    counted = [a for a in answers if "left" in a.json()["error"]["message"]]
    assert len(counted) == 4 and codes.count("too_many_attempts") == 1, codes
    assert boxes[1].verify(email, code).status_code == 400  # the right code died with it
    for box in boxes:
        box.close()


def test_one_ipv6_network_shares_one_address_budget(box_factory: ServerFactory):
    """Anyone holding an IPv6 address holds its whole /64: the per-address limits count the
    /64, or a client would dodge them by changing the low bits on every request."""
    auth = {"otp_requests_per_address": 3, "otp_verifies_per_address": 3}
    client = BoxClient(box_factory(server={"proxies_count": 1}, auth=auth), None)

    def ask_from(address: str, email: str) -> httpx.Response:
        return client.http.post(
            "/api/v1/auth/otp/request", json={"email": email}, headers={"x-forwarded-for": address}
        )

    for n in range(1, 4):
        assert ask_from(f"2001:db8:1:2::{n:x}", f"v6-{n}@example.com").status_code == 200
    assert_limited(ask_from("2001:db8:1:2:ffff::9", "v6-late@example.com"))
    assert ask_from("2001:db8:1:3::1", "v6-late@example.com").status_code == 200  # next /64
    # an IPv4 client (also written IPv4-mapped) keeps its own address's budget
    for n in range(3):
        assert ask_from("192.0.2.1", f"v4-{n}@example.com").status_code == 200
    assert_limited(ask_from("::ffff:192.0.2.1", "v4-late@example.com"))
    # what the client wrote before the address its proxy appended changes nothing
    assert_limited(ask_from("203.0.113.50, 192.0.2.1", "v4-late@example.com"))
    assert ask_from("192.0.2.2", "v4-late@example.com").status_code == 200
    client.close()


def test_one_code_sent_to_two_processes_at_once_signs_in_once(box_factory: ServerFactory):
    boxes = [BoxClient(box_factory(data="single-use"), None) for _ in range(2)]
    email = "twice@example.com"
    assert boxes[0].request_code(email).status_code == 200
    code = console_code(boxes[0].server, email)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda n: boxes[n % 2].verify(email, code), range(8)))
    assert sorted(a.status_code for a in answers) == [200] + [400] * 7
    key = next(a.json()["api_key"] for a in answers if a.status_code == 200)
    assert len(boxes[1].get("/api/v1/auth/key", key).json()) == 1  # one login key minted
    for box in boxes:
        box.close()


def test_sign_ins_forwarded_by_a_proxy_without_proxies_count_are_warned_of_once(
    box_factory: ServerFactory,
) -> None:
    """Behind a reverse proxy on the same machine with server.proxies_count left at 0, every
    client counts as the proxy's loopback address: one client asking 50 codes in a window
    locks everyone out of signing in, and nothing said why. The first sign-in that names the
    client it was forwarded for says so in the log, once per process."""
    server = box_factory()
    with httpx.Client(base_url=server.base_url, timeout=30, verify=TLS) as http:
        for n in range(3):
            answer = http.post("/api/v1/auth/otp/request", json={"email": f"p{n}@proxy.test"},
                               headers={"x-forwarded-for": f"203.0.113.{n}"})  # fmt: skip
            assert answer.status_code == 200
    warned = [line for line in server.log_text().splitlines() if "proxies_count" in line]
    assert len(warned) == 1, server.log_text()
    assert "X-Forwarded-For" in warned[0]
    assert "203.0.113" not in warned[0]


def test_no_proxy_warning_for_direct_clients_or_a_set_proxies_count(
    box_factory: ServerFactory,
) -> None:
    direct, proxied = box_factory(), box_factory(server={"proxies_count": 1})
    for server, headers in ((direct, {}), (proxied, {"x-forwarded-for": "203.0.113.9"})):
        answer = httpx.post(server.base_url + "/api/v1/auth/otp/request", headers=headers,
                            json={"email": "q@proxy.test"}, timeout=30, verify=TLS)  # fmt: skip
        assert answer.status_code == 200
        assert "proxies_count" not in server.log_text()


def test_verify_attempts_per_email_are_capped_per_day_too(box_factory: ServerFactory):
    """Ten verifies per email every 10 minutes, without end, let anyone guess 1,440 codes a
    day at an account (a 6-digit code: one account in 700 a day, 40% of one account in a
    year). auth.otp_verifies_per_email_per_day caps the guesses of a day (default 50)."""
    assert DEFAULTS.otp_verifies_per_email_per_day == 50
    lowered = {"otp_verifies_per_email_per_day": 3, "otp_verifies_per_email": 100,
               "rate_limit_window_sec": 60}  # fmt: skip
    client = BoxClient(box_factory(auth=lowered), None)
    assert client.request_code("daily@example.com").status_code == 200
    right = console_code(client.server, "daily@example.com")
    for wrong in (not_the(right, n) for n in (1, 2, 3)):
        assert client.verify("daily@example.com", wrong).status_code == 400
    limited = client.verify("daily@example.com", right)
    assert assert_limited(limited, window=86400) > 60
    assert client.verify("other@example.com", "000000").status_code == 400  # per email
    client.close()


def test_code_mails_per_mailbox_are_capped_per_day_too(box_factory: ServerFactory):
    """Five code mails per mailbox every 10 minutes, without end, let anyone (from one address,
    with a loop) send 720 sign-in mails a day into one person's inbox from the operator's
    domain: a mail bomb, and spam reports against the operator's sender. The day's mails to
    a mailbox are capped by auth.otp_requests_per_email_per_day (default 20)."""
    assert DEFAULTS.otp_requests_per_email_per_day == 20
    lowered = {"otp_requests_per_email_per_day": 3, "otp_requests_per_email": 100,
               "rate_limit_window_sec": 60}  # fmt: skip
    client = BoxClient(box_factory(auth=lowered), None)
    for email in ("inbox@example.com", "inbox+a@example.com", "inbox+b@example.com"):
        assert client.request_code(email).status_code == 200
    limited = client.request_code("inbox+c@example.com")
    assert assert_limited(limited, window=86400) > 60
    assert "in 24 hours" in limited.json()["error"]["message"]
    assert client.request_code("neighbour@example.com").status_code == 200  # per mailbox
    client.close()


def test_events_stamped_ahead_of_the_clock_hold_one_window_not_until_the_clock_catches_up(
    box_factory: ServerFactory,
):
    """A box whose clock ran an hour ahead (corrected since by NTP, or another box on the same
    PostgreSQL database with a fast clock) stamped a code request an hour into the future. It
    counted for the hour plus the window: the mailbox got 429 with Retry-After 3602 and no code
    for an hour, whatever auth.rate_limit_window_sec said. Such an event now counts as made
    now: the limit still holds, for one window."""
    window = 2
    lowered = {"otp_requests_per_email": 1, "rate_limit_window_sec": window}
    client = BoxClient(box_factory(auth=lowered), None)
    ahead = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
    write_config_db(
        client.server.config,
        "INSERT INTO rate_event (bucket, created_at) VALUES (?, ?)",
        ("otp-request:email:early@example.com", str(ahead)),
    )
    retry_after = assert_limited(client.request_code("early@example.com"), window=window)
    time.sleep(retry_after + 0.1)
    assert client.request_code("early@example.com").status_code == 200
    assert_limited(client.request_code("early@example.com"), window=window)  # still a limit
    client.close()
