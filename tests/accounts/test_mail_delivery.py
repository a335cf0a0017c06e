"""How codes reach people: the console backend (codes in the log, said loudly at start) and
SMTP (plain, STARTTLS with a verified certificate, login), and what a failed mail does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.accounts.conftest import BoxClient, ServerFactory, console_code, smtp_sections
from tests.fakes.smtp_server import (
    RecordingSmtpServer,
    make_self_signed_cert,
    server_tls_context,
)
from tests.support import base_sections, free_port, run_cli, write_config

pytestmark = pytest.mark.timeout(90)
CREDENTIALS = ("mailer@box.test", "s3cret-smtp-pa55word")


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_smtp(cert: tuple[Path, Path]) -> Iterator[RecordingSmtpServer]:
    """SMTP that insists on STARTTLS and a login."""
    server = RecordingSmtpServer(tls_context=server_tls_context(*cert), credentials=CREDENTIALS)
    server.start()
    yield server
    server.stop()


def tls_sections(smtp: RecordingSmtpServer, password: str) -> dict[str, object]:
    return smtp_sections(smtp) | {
        "smtp_starttls": True,
        "smtp_username": CREDENTIALS[0],
        "smtp_password": password,
    }


def assert_mail_failed(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["type"] == "api_error" and error["code"] == "email_delivery_failed"
    assert "could not send the sign-in email" in error["message"]
    assert reason in error["message"]


def test_console_backend_prints_the_code_and_says_so_at_start(box_factory: ServerFactory):
    box = box_factory()
    client = BoxClient(box, None)
    startup = box.log_text()
    assert 'email.backend = "console"' in startup and "NOT emailed" in startup
    assert client.request_code("trial@example.com").status_code == 200
    code = console_code(box, "trial@example.com")
    assert client.verify("trial@example.com", code).status_code == 200
    client.close()


def test_refused_mail_gives_503_and_its_code_is_dead(
    box_factory: ServerFactory, smtp: RecordingSmtpServer
):
    box = box_factory(email=smtp_sections(smtp))
    client = BoxClient(box, smtp)
    smtp.reject_data = True
    try:
        assert_mail_failed(client.request_code("bounced@example.com"), "answered 554")
    finally:
        smtp.reject_data = False
    refused = smtp.wait_for("bounced@example.com")
    assert not refused.accepted
    response = client.verify("bounced@example.com", refused.code)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_code"
    # once mail flows again, signing in works
    assert client.sign_in("bounced@example.com")["email"] == "bounced@example.com"
    client.close()


def test_unreachable_mail_server_gives_503(box_factory: ServerFactory):
    dead = {"backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": free_port()}
    dead["smtp_starttls"] = False
    client = BoxClient(box_factory(email=dead), None)
    assert_mail_failed(client.request_code("lost@example.com"), "unreachable")
    client.close()


def test_starttls_and_login(
    box_factory: ServerFactory, tls_smtp: RecordingSmtpServer, cert: tuple[Path, Path]
):
    box = box_factory(
        email=tls_sections(tls_smtp, CREDENTIALS[1]), env={"SSL_CERT_FILE": str(cert[0])}
    )
    client = BoxClient(box, tls_smtp)
    signed_in = client.sign_in("secure@example.com")
    assert signed_in["email"] == "secure@example.com"
    mail = tls_smtp.wait_for("secure@example.com")
    assert mail.tls and mail.auth_login == CREDENTIALS[0]
    assert "STARTTLS" in box.log_text()
    assert CREDENTIALS[1] not in box.log_text()
    client.close()


def test_wrong_smtp_password_gives_503_without_the_password(
    box_factory: ServerFactory, tls_smtp: RecordingSmtpServer, cert: tuple[Path, Path]
):
    box = box_factory(
        email=tls_sections(tls_smtp, "wrong-pa55word"), env={"SSL_CERT_FILE": str(cert[0])}
    )
    client = BoxClient(box, tls_smtp)
    response = client.request_code("locked@example.com")
    assert_mail_failed(response, "refused the login")
    assert "pa55word" not in response.text and "pa55word" not in box.log_text()
    assert tls_smtp.messages_to("locked@example.com") == []
    client.close()


def test_untrusted_certificate_is_refused(
    box_factory: ServerFactory, tls_smtp: RecordingSmtpServer
):
    client = BoxClient(box_factory(email=tls_sections(tls_smtp, CREDENTIALS[1])), tls_smtp)
    assert_mail_failed(client.request_code("mitm@example.com"), "TLS")
    assert tls_smtp.messages_to("mitm@example.com") == []
    client.close()


def test_smtp_without_a_host_stops_the_start(tmp_path: Path):
    sections = base_sections(tmp_path, free_port()) | {"email": {"backend": "smtp"}}
    config = write_config(tmp_path / "codelace.toml", sections)
    result = run_cli(config, "serve", timeout=30)
    assert result.returncode == 1
    assert "email.smtp_host" in result.stderr and "Traceback" not in result.stderr
