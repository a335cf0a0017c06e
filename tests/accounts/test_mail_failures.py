"""A mail server that fails as real ones do (a recipient refused for now or for good, a
message refused): what the person signing in keeps (the code before, the budget of mails) and
what the operator learns."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.accounts.conftest import BoxClient, ServerFactory, smtp_sections
from tests.fakes.smtp_server import (
    RecordingSmtpServer,
    ScriptedSmtpServer,
    TarpitSmtpServer,
)

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
    smtp.first_rcpt_replies = []


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


def test_a_mail_deferred_for_now_is_tried_again_and_arrives(
    client: BoxClient, refusing: RecordingSmtpServer
):
    """A 4xx is the mail server's "not now" (greylisting, too busy, a full queue): the mail was
    given up at the first one, and the person told to try again later. Now it is sent again
    after a short wait, a bounded number of times, within email.smtp_timeout_sec."""
    refusing.first_rcpt_replies = [GREYLISTED, "450 4.2.1 Mailbox busy, try again later"]
    started = time.monotonic()
    code = client.mailed_code("deferred@example.com")
    assert time.monotonic() - started < 10
    assert refusing.rcpt_tries.count("deferred@example.com") == 3
    assert client.verify("deferred@example.com", code).status_code == 200


def test_a_mail_refused_for_good_is_not_tried_again(
    client: BoxClient, refusing: RecordingSmtpServer
):
    """A 5xx is final: one try, and the person told to check the address."""
    refusing.first_rcpt_replies = ["550 5.1.1 <gone@example.com>: Recipient address rejected"]
    response = client.request_code("gone@example.com")
    assert response.status_code == 503 and "check it" in response.text, response.text
    assert refusing.rcpt_tries.count("gone@example.com") == 1
    assert refusing.messages_to("gone@example.com") == []


def test_a_mail_deferred_every_time_is_tried_a_bounded_number_of_times(
    client: BoxClient, refusing: RecordingSmtpServer
):
    refusing.rcpt_reply = GREYLISTED
    response = client.request_code("always-later@example.com")
    assert response.status_code == 503 and "try again later" in response.text, response.text
    assert refusing.rcpt_tries.count("always-later@example.com") == 3


def mail_failure_line(client: BoxClient, email: str) -> str:
    """The box's log line about the failed mail to `email` (one per test)."""
    pattern = rf"sign-in mail to {re.escape(email)} not sent.*"
    found = client.server.wait_for_log(pattern)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize(
    ("user", "reply"),
    [("relay", "550 5.7.1 <relay@example.com>: Relay access denied"), ("grey", GREYLISTED)],
)
def test_the_operator_log_says_what_the_mail_server_answered(
    client: BoxClient, refusing: RecordingSmtpServer, user: str, reply: str
):
    """'refused the recipient' alone leaves the operator guessing (relay denied? greylisted?
    a typo?): the log line carries the server's own status and words; the person's answer
    does not (they are the operator's business)."""
    refusing.rcpt_reply = reply
    response = client.request_code(f"{user}@example.com")
    assert response.status_code == 503
    line = mail_failure_line(client, f"{user}@example.com")
    assert reply in line, line
    assert reply.split(" ", 2)[2] not in response.text


def test_a_refused_message_is_logged_with_the_servers_words(
    client: BoxClient, refusing: RecordingSmtpServer
):
    refusing.reject_data = True
    try:
        response = client.request_code("content@example.com")
    finally:
        refusing.reject_data = False
    assert response.status_code == 503
    line = mail_failure_line(client, "content@example.com")
    assert "554 5.0.0 Transaction failed (test refusal)" in line, line


def test_an_address_refused_for_good_is_not_told_to_try_again_later(
    client: BoxClient, refusing: RecordingSmtpServer
):
    """550 (no such mailbox) will be 550 again: the person should check the address. A 451
    is for now: trying again later is the right advice."""
    refusing.rcpt_reply = "550 5.1.1 <nobody@example.com>: Recipient address rejected"
    for_good = client.request_code("nobody@example.com").json()["error"]["message"]
    assert "refused this address" in for_good and "try again later" not in for_good
    refusing.rcpt_reply = GREYLISTED
    for_now = client.request_code("nobody@example.com").json()["error"]["message"]
    assert "for now" in for_now and "try again" in for_now


def test_a_from_address_at_an_international_domain_reaches_any_mail_server(
    box_factory: ServerFactory,
):
    """An operator at bücher.test: the sender goes out in its ASCII (IDNA) form, so a server
    that offers no SMTPUTF8 (as many relays) takes the mail, and the display name is an
    encoded word, not raw 8-bit bytes in a header."""
    ascii_only = RecordingSmtpServer(smtputf8=False).start()
    try:
        email = smtp_sections(ascii_only) | {"from_address": "Bücherei <anmeldung@bücher.test>"}
        client = BoxClient(box_factory(email=email), ascii_only)
        assert client.sign_in("reader@example.com")["email"] == "reader@example.com"
        mail = ascii_only.wait_for("reader@example.com")
        assert mail.mail_from == "anmeldung@xn--bcher-kva.test"
        assert mail.message["From"] == "Bücherei <anmeldung@xn--bcher-kva.test>"
        assert mail.message["Message-ID"].endswith("@xn--bcher-kva.test>")
        assert mail.raw.isascii()
        client.close()
    finally:
        ascii_only.stop()


@pytest.mark.parametrize(("reply", "delay"), [("500 5.5.1 Unknown command", 0.0), ("221 Bye", 8.0)])
def test_a_mail_the_server_took_is_sent_however_it_answers_quit(
    client: BoxClient, refusing: RecordingSmtpServer, reply: str, delay: float
):
    """Once the server said 250 to the message, the mail is on its way: an odd or slow answer
    to the QUIT after it must not fail the request (and kill the code in the inbox), nor hold
    it for the whole SMTP timeout."""
    refusing.quit_reply, refusing.quit_delay = reply, delay
    try:
        started = time.monotonic()
        response = client.request_code(f"quit{int(delay)}@example.com")
        took = time.monotonic() - started
    finally:
        refusing.quit_reply, refusing.quit_delay = "221 Bye", 0.0
    assert response.status_code == 200, response.text
    assert took < 5, f"waited {took:.1f} s for the answer to QUIT"
    code = refusing.wait_for(f"quit{int(delay)}@example.com").code
    assert client.verify(f"quit{int(delay)}@example.com", code).status_code == 200


def mail_counts(client: BoxClient) -> dict[str, float]:
    """codelace_sign_in_mails_total by outcome, from the box's /metrics (scraped from loopback)."""
    answer = client.http.get("/metrics")
    assert answer.status_code == 200, answer.text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            if sample.name == "codelace_sign_in_mails_total":
                counts[sample.labels["outcome"]] = sample.value
    return counts


def test_the_metrics_count_sign_in_mails_by_outcome(
    client: BoxClient, refusing: RecordingSmtpServer
):
    """A mail outage stops every sign-in; the operator's dashboard and alerts see it as such
    (deferred, refused, unreachable...), not only as 503s on a route among others."""
    before = mail_counts(client)
    client.mailed_code("counted@example.com")
    refusing.rcpt_reply = GREYLISTED
    client.request_code("counted@example.com")
    refusing.rcpt_reply = "550 5.1.1 <counted@example.com>: Recipient address rejected"
    client.request_code("counted@example.com")
    after = mail_counts(client)
    grew = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    assert grew == {"sent": 1, "deferred": 1, "refused": 1}


def test_a_login_the_server_does_not_offer_is_named_as_such(
    box_factory: ServerFactory, smtp: RecordingSmtpServer
):
    """smtp_username set for a server that offers no AUTH (as most offer it only after
    STARTTLS): the answer and log named STARTTLS, which was not even asked for."""
    email = smtp_sections(smtp) | {"smtp_username": "u", "smtp_password": "login-pa55"}
    client = BoxClient(box_factory(email=email), smtp)
    response = client.request_code("nologin@example.com")
    assert response.status_code == 503
    message = response.json()["error"]["message"]
    assert "does not offer login (SMTP AUTH)" in message and "STARTTLS" not in message
    client.close()


def test_a_mail_server_that_never_finishes_answering_costs_the_request_a_bounded_wait(
    box_factory: ServerFactory,
):
    """Each line within the read timeout, never the last one: the code request hung for as
    long as the server kept talking (past a minute: the person's page spun, the client gave
    up first). email.smtp_timeout_sec bounds the whole exchange, connecting included."""
    tarpit = TarpitSmtpServer().start()
    try:
        email = {"backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": tarpit.port}
        email |= {"smtp_starttls": False, "from_address": "box@team.test", "smtp_timeout_sec": 2}
        client = BoxClient(box_factory(email=email), None)
        started = time.monotonic()
        response = client.request_code("tarpit@example.com")
        took = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert "did not answer in time" in response.json()["error"]["message"]
        assert 1.5 < took < 6, f"took {took:.1f} s"
        assert mail_counts(client).get("timeout") == 1
        client.close()
    finally:
        tarpit.stop()


@pytest.mark.parametrize(
    ("greeting", "retried"),
    [("421 4.7.0 mx.test Too many connections, try later", True),
     ("554 5.7.1 mx.test Service unavailable; client host blocked using zen", False)],
)  # fmt: skip
def test_a_session_refused_in_the_greeting_is_logged_with_the_servers_words(
    box_factory: ServerFactory, greeting: str, retried: bool
):
    """A server that refuses the session at once (421 busy, 554 a blocklisted box) said why in
    its greeting: the log showed only "Connection unexpectedly closed" or the 503 that came
    after, and a 421 ("not now") was not tried again as any other 4xx is."""
    refusing = ScriptedSmtpServer(greeting).start()
    try:
        email = {"backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": refusing.port}
        email |= {"smtp_starttls": False, "from_address": "box@team.test"}
        client = BoxClient(box_factory(email=email), None)
        response = client.request_code("greeted@example.com")
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "email_delivery_failed"
        assert greeting.split(" ", 2)[2] not in response.text
        line = mail_failure_line(client, "greeted@example.com")
        assert greeting in line, line
        assert (refusing.connections > 1) is retried, refusing.connections
        client.close()
    finally:
        refusing.stop()


def scripted_client(box_factory: ServerFactory, server: ScriptedSmtpServer) -> BoxClient:
    """A box mailing through `server`, plain SMTP without login."""
    email = {"backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": server.port}
    email |= {"smtp_starttls": False, "from_address": "box@team.test"}
    return BoxClient(box_factory(email=email), None)


def test_a_server_refusing_ehlo_for_now_is_logged_with_its_words_and_tried_again(
    box_factory: ServerFactory,
):
    """A 421 to EHLO (shutting down, too many errors) closes the session: the box went on to
    the next command and logged only "Connection unexpectedly closed"."""
    busy = ScriptedSmtpServer(ehlo="421 4.3.2 mx.test Service shutting down").start()
    try:
        client = scripted_client(box_factory, busy)
        response = client.request_code("ehlo@example.com")
        assert response.status_code == 503, response.text
        line = mail_failure_line(client, "ehlo@example.com")
        assert "421 4.3.2 mx.test Service shutting down" in line, line
        assert busy.connections > 1
        client.close()
    finally:
        busy.stop()


def test_a_server_that_speaks_only_helo_takes_the_mail(box_factory: ServerFactory):
    """RFC 5321 4.1.1.1: a client whose EHLO is refused as unknown falls back to HELO (as
    smtplib itself does); the box sent MAIL after the refused EHLO and every mail failed."""
    old = ScriptedSmtpServer(ehlo="502 5.5.2 Error: command not recognized").start()
    try:
        client = scripted_client(box_factory, old)
        response = client.request_code("helo@example.com")
        assert response.status_code == 200, response.text
        assert old.taken == 1
        client.close()
    finally:
        old.stop()


def test_a_code_request_the_client_left_still_puts_the_code_before_back_if_no_mail_went(
    client: BoxClient, refusing: RecordingSmtpServer
):
    """The person closed the tab (or curl's --max-time hit) while the server greylisted: the
    box stopped trying, so no new mail came, yet the new code stayed and the one in the inbox
    was dead. The mail is still tried to the end, and its failure undone as when one waits."""
    before = client.mailed_code("left@example.com")
    refusing.rcpt_reply = GREYLISTED
    with pytest.raises(httpx.TimeoutException):
        client.http.post(
            "/api/v1/auth/otp/request", json={"email": "left@example.com"}, timeout=0.3
        )
    time.sleep(3)  # three tries at most, 1.5 s of waits between them
    refusing.rcpt_reply = None
    signed_in = client.verify("left@example.com", before)
    assert signed_in.status_code == 200, signed_in.text
