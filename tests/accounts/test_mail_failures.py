"""A mail server that fails as real ones do (a recipient refused for now or for good, a
message refused): what the person signing in keeps (the code before, the budget of mails) and
what the operator learns."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.accounts.conftest import BoxClient, ServerFactory, smtp_sections
from tests.fakes.smtp_server import RecordingSmtpServer

pytestmark = pytest.mark.timeout(90)
GREYLISTED = "451 4.7.1 Recipient address rejected: Greylisted, try again in 5 minutes"


@pytest.fixture(scope="module")
def client(box_factory: ServerFactory, smtp: RecordingSmtpServer) -> Iterator[BoxClient]:
    """A box mailing through the module's SMTP server."""
    box_client = BoxClient(box_factory(email=smtp_sections(smtp)), smtp)
    yield box_client
    box_client.close()


@pytest.fixture
def refusing(smtp: RecordingSmtpServer) -> Iterator[RecordingSmtpServer]:
    """The module's SMTP server, refusing recipients as the test sets `rcpt_reply`, and
    taking them again after the test."""
    yield smtp
    smtp.rcpt_reply = None


def test_mails_that_were_not_sent_do_not_spend_the_mailbox_budget(
    box_factory: ServerFactory, refusing: RecordingSmtpServer
):
    """`otp_requests_per_email` counts codes mailed: after a mail outage the person gets a code
    at once, not a 429 for the window. Requests from one address still count, sent or not."""
    auth = {"otp_requests_per_email": 2, "otp_requests_per_address": 4}
    client = BoxClient(box_factory(email=smtp_sections(refusing), auth=auth), refusing)
    refusing.rcpt_reply = GREYLISTED
    for _ in range(3):
        failed = client.request_code("outage@example.com")
        assert failed.status_code == 503, failed.text
    refusing.rcpt_reply = None
    assert client.sign_in("outage@example.com")["email"] == "outage@example.com"
    from_here = client.request_code("other@example.com")
    assert from_here.status_code == 429 and "from here" in from_here.json()["error"]["message"]
    client.close()


def test_a_new_code_whose_mail_failed_leaves_the_code_before_working(
    client: BoxClient, refusing: RecordingSmtpServer
):
    """'Send a new code' that fails (the server greylists for now) must not silently kill the
    code already in the person's inbox: nothing was sent, so nothing replaced it."""
    before = client.mailed_code("resend@example.com")
    refusing.rcpt_reply = GREYLISTED
    assert client.request_code("resend@example.com").status_code == 503
    refusing.rcpt_reply = None
    signed_in = client.verify("resend@example.com", before)
    assert signed_in.status_code == 200, signed_in.text


def test_the_code_before_keeps_its_wrong_tries_when_a_new_one_failed(
    client: BoxClient, refusing: RecordingSmtpServer
):
    """Putting the earlier code back gives no one fresh tries at it."""
    before = client.mailed_code("tries@example.com")
    wrong = f"{(int(before) + 1) % 1_000_000:06d}"
    for _ in range(4):
        assert client.verify("tries@example.com", wrong).status_code == 400
    refusing.rcpt_reply = GREYLISTED
    assert client.request_code("tries@example.com").status_code == 503
    refusing.rcpt_reply = None
    last = client.verify("tries@example.com", wrong).json()["error"]
    assert last["code"] == "too_many_attempts", last
    assert client.verify("tries@example.com", before).status_code == 400
