"""The box-wide cap on sign-in code mails (auth.otp_codes_per_hour). The per-mailbox and
per-address limits alone let someone holding many addresses (an IPv6 /48 is 65,536 /64s) make
the box mail codes to as many mailboxes as they like, burning the operator's SMTP quota and
sender reputation. The cap holds across processes on one database (two boxes here, as two
workers or two machines on one PostgreSQL); past it a 429 says the box is sending too many
codes, and the operator's log says so once an hour."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from codelace_box.accounts.ratelimit import LimitsReached, hit, wait_in_words
from codelace_box.accounts.signin import request_limits
from codelace_box.config import AuthConfig
from codelace_box.config.loading import config_from_data
from codelace_box.db.core import close_database, open_database
from codelace_box.db.migrate import migrate
from codelace_box.errors import ConfigError
from tests.accounts.conftest import BoxClient, ServerFactory, smtp_sections
from tests.fakes.smtp_server import RecordingSmtpServer

pytestmark = pytest.mark.timeout(90)
CAP = 3
HOUR_SEC = 3600
WARNING = "auth.otp_codes_per_hour"


def capped_pair(
    box_factory: ServerFactory, smtp: RecordingSmtpServer, data: str
) -> tuple[BoxClient, BoxClient]:
    """Two boxes on one database mailing through `smtp`, capped at CAP codes an hour, behind
    a proxy (each request names its client in X-Forwarded-For)."""
    sections = {
        "email": smtp_sections(smtp),
        "auth": {"otp_codes_per_hour": CAP},
        "server": {"proxies_count": 1},
    }
    first, second = (BoxClient(box_factory(data=data, **sections), smtp) for _ in range(2))
    return first, second


@pytest.fixture(scope="module")
def pair(box_factory: ServerFactory, smtp: RecordingSmtpServer) -> Iterator[tuple[BoxClient, ...]]:
    boxes = capped_pair(box_factory, smtp, "capped")
    yield boxes
    for box in boxes:
        box.close()


def ask_from(client: BoxClient, network: int, email: str) -> httpx.Response:
    """A code request from the `network`-th /64 of one /48: each its own client address."""
    return client.http.post(
        "/api/v1/auth/otp/request",
        json={"email": email},
        headers={"x-forwarded-for": f"2001:db8:7:{network:x}::1"},
    )


def warnings_in(boxes: tuple[BoxClient, ...]) -> list[str]:
    return [line for b in boxes for line in b.server.log_text().splitlines() if WARNING in line]


def test_the_default_cap_is_the_documented_one_and_zero_lifts_it(tmp_path: Path):
    defaults = AuthConfig()
    assert defaults.otp_codes_per_hour == 500
    # one client address alone cannot fill it (and shut sign-in for everyone for an hour)
    per_hour = defaults.otp_requests_per_address * 3600 // defaults.rate_limit_window_sec
    assert per_hour < defaults.otp_codes_per_hour
    with pytest.raises(ConfigError, match=r"auth\.otp_codes_per_hour"):
        config_from_data({"auth": {"otp_codes_per_hour": -1}}, None, {})
    migrate(open_database(tmp_path / "unit.db"))
    try:
        capped, lifted = AuthConfig(otp_codes_per_hour=2), AuthConfig(otp_codes_per_hour=0)
        for n in range(2):
            hit(request_limits(f"u{n}@example.com", f"192.0.2.{n}", capped))
        with pytest.raises(LimitsReached, match="this box is sending too many"):
            hit(request_limits("u9@example.com", "192.0.2.9", capped))
        for n in range(10, 15):  # 0: no cap, only the mailbox's and the address's limits
            hit(request_limits(f"u{n}@example.com", f"192.0.2.{n}", lifted))
    finally:
        close_database()


def test_codes_to_many_mailboxes_from_many_networks_stop_at_the_box_cap(pair, smtp):
    for n in range(CAP):
        answer = ask_from(pair[n % 2], n, f"spread{n}@example.com")
        assert answer.status_code == 200, answer.text
        smtp.wait_for(f"spread{n}@example.com")
    for n, box in enumerate(pair):
        email = f"late{n}@example.com"
        refused = ask_from(box, 100 + n, email)
        assert refused.status_code == 429, refused.text
        error = refused.json()["error"]
        assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limited")
        retry_after = int(refused.headers["retry-after"])
        assert HOUR_SEC - 60 <= retry_after <= HOUR_SEC
        assert error["message"] == (
            "this box is sending too many sign-in codes just now; "
            f"try again in {wait_in_words(retry_after)}"
        )
        assert smtp.messages_to(email) == []
    # the operator hears of it once (not once per refusal, process or box), without addresses
    deadline = time.monotonic() + 5
    while not warnings_in(pair) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ask_from(pair[0], 200, "later@example.com").status_code == 429
    time.sleep(0.3)  # a second line, were one written, has had the time to land
    warned = warnings_in(pair)
    assert len(warned) == 1, warned
    assert "@" not in warned[0] and not re.search(r"2001:db8", warned[0])
    assert f"{CAP} sign-in codes" in warned[0]
    # the cap counts mails only: someone who has their code still signs in
    verified = pair[1].verify("spread0@example.com", smtp.latest_code("spread0@example.com"))
    assert verified.status_code == 200, verified.text


def test_mails_the_server_did_not_take_do_not_count_against_the_cap(box_factory, smtp):
    """A refused mail used none of the operator's quota: after a mail outage the box is not
    shut for an hour."""
    boxes = capped_pair(box_factory, smtp, "capped-refusals")
    try:
        smtp.rcpt_reply = "550 5.1.1 <x>: Recipient address rejected: User unknown"
        for n in range(CAP + 1):
            assert ask_from(boxes[n % 2], n, f"bounce{n}@example.com").status_code == 503
        smtp.rcpt_reply = None
        for n in range(CAP):
            answer = ask_from(boxes[n % 2], 10 + n, f"kept{n}@example.com")
            assert answer.status_code == 200, answer.text
        assert ask_from(boxes[0], 20, "over@example.com").status_code == 429
    finally:
        smtp.rcpt_reply = None
        for box in boxes:
            box.close()
