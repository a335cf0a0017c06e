"""Sign-in with emailed codes, end to end: a real box process mails codes to a real SMTP
server on loopback, and the tests read them from the received mail."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest

from tests.accounts.conftest import (
    BoxClient,
    ServerFactory,
    assert_nothing_secret_stored,
    cli,
    secrets_in_log,
    server_pids,
    smtp_sections,
)
from tests.fakes.smtp_server import RecordingSmtpServer
from tests.support import ServerProcess, is_uuid4

TTL = 30  # the shared box's code lifetime
SHORT_TTL = 2  # the expiring code's box: the expiry test waits it out
KEY_RE = re.compile(r"^cl_[A-Za-z0-9]{40}$")
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def box(box_factory: ServerFactory, smtp: RecordingSmtpServer) -> ServerProcess:
    return box_factory(auth={"otp_ttl_sec": TTL}, email=smtp_sections(smtp))


@pytest.fixture(scope="module")
def client(box: ServerProcess, smtp: RecordingSmtpServer) -> Iterator[BoxClient]:
    c = BoxClient(box, smtp)
    yield c
    c.close()


ExpiringCode = tuple[BoxClient, str, str, float]  # the client, email, code, when asked


@pytest.fixture(scope="module", autouse=True)
def expiring_code(box_factory: ServerFactory, smtp: RecordingSmtpServer) -> Iterator[ExpiringCode]:
    """A code asked for when the module starts; the last test checks it has expired. It lives
    at a box of its own: at the shared box, any code asked for once it has expired (when the
    module runs longer than TTL, e.g. on a busy machine) would sweep it away first."""
    own = BoxClient(box_factory(auth={"otp_ttl_sec": SHORT_TTL}, email=smtp_sections(smtp)), smtp)
    email = "expiring@example.com"
    yield own, email, own.mailed_code(email), time.monotonic()
    own.close()


def other_code(code: str) -> str:
    """A valid-looking code that is not `code`."""
    return f"{(int(code) + 1) % 1_000_000:06d}"


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    error: dict[str, str] = response.json()["error"]
    assert error["code"] == code
    assert error["message"] and error["type"]
    return error


def test_code_mail_is_well_formed_and_signs_in(client: BoxClient, smtp: RecordingSmtpServer):
    email = "alice@example.com"
    response = client.request_code(email)
    assert response.status_code == 200
    assert response.json() == {"email": email, "expires_in_sec": TTL}
    assert response.headers["x-request-id"]

    mail = smtp.wait_for(email)
    assert mail.accepted and mail.mail_from == "codelace@box.test" and mail.rcpt_tos == (email,)
    headers = mail.message
    assert "sign-in code" in headers["Subject"]
    assert headers["From"] == "codelace@box.test" and headers["To"] == email
    sent_at = parsedate_to_datetime(headers["Date"])
    assert abs(sent_at - datetime.now(UTC)) < timedelta(minutes=2)
    assert re.fullmatch(r"<[^<>@\s]+@box\.test>", headers["Message-ID"])
    assert headers.get_content_type() == "text/plain"
    assert "30 seconds" in mail.body

    day_before = datetime.now(UTC).date()
    response = client.verify(email, mail.code)
    day_after = datetime.now(UTC).date()  # the key is named for a day between the two
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"user_id", "api_key", "email", "credit_balance_usd"}
    assert KEY_RE.match(body["api_key"]) and body["email"] == email
    assert body["credit_balance_usd"] == 0
    assert is_uuid4(body["user_id"]), body["user_id"]
    me = client.get("/api/v1/auth/me", body["api_key"]).json()
    assert me == {"id": body["user_id"], "email": email, "display_name": ""}
    keys = client.get("/api/v1/auth/key", body["api_key"]).json()
    assert [k["name"] for k in keys] in ([f"login-{day}"] for day in {day_before, day_after})
    assert keys[0]["key_prefix"] == body["api_key"][:7]


def test_second_sign_in_reuses_the_account_with_a_new_key(client: BoxClient):
    first = client.sign_in("repeat@example.com")
    second = client.sign_in("repeat@example.com")
    assert second["user_id"] == first["user_id"] and second["api_key"] != first["api_key"]
    other = client.sign_in("another@example.com")
    assert is_uuid4(other["user_id"]) and other["user_id"] != first["user_id"]
    for key in (first["api_key"], second["api_key"]):
        assert client.get("/api/v1/auth/me", key).status_code == 200
    assert len(client.get("/api/v1/auth/key", second["api_key"]).json()) == 2


def test_email_is_normalised(client: BoxClient, smtp: RecordingSmtpServer):
    response = client.request_code("  Bob.Smith@Example.COM \n")
    assert response.status_code == 200
    assert response.json()["email"] == "bob.smith@example.com"
    code = smtp.wait_for("bob.smith@example.com").code
    signed_in = client.verify("BOB.SMITH@example.com ", code)
    assert signed_in.status_code == 200
    assert signed_in.json()["email"] == "bob.smith@example.com"


@pytest.mark.parametrize(
    "email",
    [
        "",
        "   ",
        "nope",
        "a@b",
        "a@@example.com",
        "a b@example.com",
        "x" * 250 + "@example.com",
        "@example.com",
        42,
        None,
        ["a@example.com"],
    ],
)
def test_invalid_emails_are_refused(client: BoxClient, email: object):
    for path in ("/api/v1/auth/otp/request", "/api/v1/auth/otp/verify"):
        response = client.http.post(path, json={"email": email, "code": "123456"})
        error = assert_error(response, 400, "invalid_email")
        assert error["type"] == "invalid_request_error"


def test_an_email_of_megabytes_is_refused_before_it_is_folded(client: BoxClient):
    """An address typed with a megabyte of non-ASCII domain is refused for its length, before
    NFKC and IDNA read it (IDNA takes seconds over a megabyte: one such unauthenticated
    request used to hold its worker, and every request on it, that long). A megabyte is no
    longer even read (past the 256 KiB a route without an API key reads: a 413)."""
    for chars, status, code in ((100_000, 400, "invalid_email"), (1_000_000, 413, None)):
        email = "a@" + "\u00e4" * chars + ".com"
        body = json.dumps({"email": email, "code": "123456"}, ensure_ascii=False).encode()
        for path in ("/api/v1/auth/otp/request", "/api/v1/auth/otp/verify"):
            response = client.http.post(path, content=body)
            if code is None:
                assert response.status_code == status, response.text
                continue
            error = assert_error(response, status, code)
            assert "longer than 254 characters" in error["message"]


def test_the_longest_address_the_box_takes_signs_in(client: BoxClient):
    """An address of 254 characters (RFC 5321's most, which the box takes) is mailed a code and
    signs in: its rate-limit counters are named after it, and on PostgreSQL a name past the
    255 characters their column holds was a 500 to every code request of an address over
    233 characters."""
    email = "m" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"
    assert len(email) == 254
    signed_in = client.sign_in(email)
    assert signed_in["email"] == email
    response = client.verify(email, "000000")  # a wrong try is counted under the same names
    assert_error(response, 400, "invalid_code")


def test_malformed_bodies_are_refused(client: BoxClient):
    response = client.http.post("/api/v1/auth/otp/request", content=b"{not json")
    assert_error(response, 400, "invalid_json")
    response = client.http.post("/api/v1/auth/otp/request", json=["a@example.com"])
    assert_error(response, 400, "invalid_json")
    assert_error(client.http.post("/api/v1/auth/otp/request"), 400, "invalid_json")


def test_same_answer_whether_or_not_the_account_exists(
    client: BoxClient, box: ServerProcess, smtp: RecordingSmtpServer
):
    cli(box, "users", "create", "known@example.com")
    cli(box, "users", "create", "off@example.com")
    cli(box, "users", "disable", "off@example.com")
    answers = {}
    for email in ("known@example.com", "stranger@example.com", "off@example.com"):
        response = client.request_code(email)
        smtp.wait_for(email)  # every one of them got a mail
        body = response.json()
        assert body.pop("email") == email
        ignored = {"x-request-id", "content-length"}
        answers[email] = (response.status_code, body, sorted(set(response.headers) - ignored))
    assert len(set(map(repr, answers.values()))) == 1, answers


def test_wrong_code_five_times_kills_the_code(client: BoxClient):
    email = "fumbler@example.com"
    code = client.mailed_code(email)
    for left in (4, 3, 2, 1):
        error = assert_error(client.verify(email, other_code(code)), 400, "invalid_code")
        assert f"{left} tr" in error["message"]
    error = assert_error(client.verify(email, other_code(code)), 400, "too_many_attempts")
    assert "request a new" in error["message"]
    assert_error(client.verify(email, code), 400, "invalid_code")


def test_a_code_works_once(client: BoxClient, smtp: RecordingSmtpServer):
    email = "once@example.com"
    client.sign_in(email)
    used = smtp.latest_code(email)
    assert_error(client.verify(email, used), 400, "invalid_code")


def test_a_new_request_replaces_the_old_code(client: BoxClient):
    email = "forgetful@example.com"
    old = client.mailed_code(email)
    new = client.mailed_code(email)
    while new == old:  # one chance in a million
        new = client.mailed_code(email)
    assert_error(client.verify(email, old), 400, "invalid_code")
    assert client.verify(email, new).status_code == 200


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", "", 123456, None])
def test_malformed_codes_are_refused(client: BoxClient, code: object):
    assert_error(client.verify("alice@example.com", code), 400, "invalid_code")


def test_a_code_for_another_email_does_not_work(client: BoxClient):
    code = client.mailed_code("owner@example.com")
    assert_error(client.verify("thief@example.com", code), 400, "invalid_code")
    assert client.verify("owner@example.com", code).status_code == 200


def test_disabled_account_cannot_sign_in(
    client: BoxClient, box: ServerProcess, smtp: RecordingSmtpServer
):
    email = "disabled@example.com"
    cli(box, "users", "create", email)
    cli(box, "users", "disable", email)
    code = client.mailed_code(email)
    error = assert_error(client.verify(email, code), 403, "account_disabled")
    assert error["type"] == "permission_error"
    cli(box, "users", "enable", email)
    assert client.sign_in(email)["email"] == email


def test_no_code_or_key_in_clear_in_database_or_log(
    client: BoxClient, box: ServerProcess, smtp: RecordingSmtpServer
):
    # Its own sign-ins first, so that it has secrets to look for when run alone too.
    for number in range(10):
        client.sign_in(f"vault{number}@example.com")
    codes = [m.code for m in smtp.messages]
    assert len(codes) >= 10 and len(client.keys_seen) >= 5
    assert_nothing_secret_stored(box, codes + client.keys_seen, marker="vault0@example.com")


def test_the_log_scan_tells_a_pid_from_a_code_in_clear(tmp_path: Path) -> None:
    """A 6-digit PID in Sanic's lines (`[123456]`, a machine with 6-digit PIDs) is no code:
    the scan passed or failed by chance there. A code written in clear is found all the same,
    beside the PID it equals too, and bracketed where no PID of the server's is."""
    started = "Srv 0 2026-12-07 07:21:51 +0000 INFO: Starting worker [123456]\n"
    assert server_pids(ServerProcess(tmp_path / "codelace.toml", 1), started) == {123456}
    assert secrets_in_log(started, ["123456"], {123456}) == []
    told = started + "2026-12-07 07:21:52,611 WARNING codelace_box: code for a@b.test: 123456\n"
    assert secrets_in_log(told, ["123456"], {123456}) == ["123456"]
    assert secrets_in_log("a code [123456]", ["123456"], {654321}) == ["123456"]
    assert secrets_in_log('{"message":"Worker ready [123456]"}', ["123456"], {123456}) == []


def test_code_expires(expiring_code: ExpiringCode):
    client, email, code, asked_at = expiring_code
    time.sleep(max(0.0, asked_at + SHORT_TTL + 1.5 - time.monotonic()))
    assert_error(client.verify(email, code), 400, "code_expired")
    assert_error(client.verify(email, code), 400, "invalid_code")


@pytest.mark.parametrize("email", ["jösé@exämple.com", "ΖΩΗ@example.gr", "用户@例子.中国"])
def test_an_address_with_letters_beyond_ascii_before_its_at_is_refused_saying_why(
    client: BoxClient, email: str
):
    """Such a mailbox (RFC 6531) needs SMTPUTF8 of every mail server on the way, which the box
    does not ask for, so it is refused; it was refused as 'not a valid email address', which
    its owner knows to be wrong, with no word of what to do instead."""
    for path in ("/api/v1/auth/otp/request", "/api/v1/auth/otp/verify"):
        response = client.http.post(path, json={"email": email, "code": "123456"})
        message = assert_error(response, 400, "invalid_email")["message"]
        assert "before the @" in message and "ASCII" in message, message


FULLWIDTH = {ord("0") + d: chr(0xFF10 + d) for d in range(10)}  # a Japanese IME's digits
ARABIC_INDIC = {ord("0") + d: chr(0x0660 + d) for d in range(10)}  # an Arabic keyboard's


@pytest.mark.parametrize("digits", [FULLWIDTH, ARABIC_INDIC], ids=["fullwidth", "arabic-indic"])
def test_a_code_typed_in_another_scripts_digits_signs_in(
    client: BoxClient, smtp: RecordingSmtpServer, digits: dict[int, str]
):
    """The address may be typed full-width (as an IME types it), the code could not: the same
    six digits in full-width or Arabic-Indic figures were 'code must be the 6 digits from the
    sign-in email', which they are."""
    email = f"digits-{len(smtp.messages)}@example.com"
    assert client.request_code(email).status_code == 200
    code = smtp.wait_for(email).code
    signed_in = client.verify(email, code.translate(digits))
    assert signed_in.status_code == 200, signed_in.text
