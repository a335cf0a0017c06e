"""How codes reach people: the console backend (codes in the log, said loudly at start) and
SMTP (plain, STARTTLS or implicit TLS with a verified certificate, login), and what a failed
mail does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from codelace_box.accounts.mailer import SMTP_TIMEOUT_SEC, startup_notice
from codelace_box.config import EmailConfig
from tests.accounts.conftest import (
    BoxClient,
    ServerFactory,
    assert_nothing_secret_stored,
    console_code,
    smtp_sections,
)
from tests.fakes.smtp_server import (
    RecordingSmtpServer,
    make_self_signed_cert,
    server_tls_context,
)
from tests.pg_cluster import query_config_db
from tests.support import (
    ServerProcess,
    base_sections,
    free_port,
    run_cli,
    write_config,
)

pytestmark = [
    pytest.mark.timeout(90),
    # the SMTPS fake requires AUTH over a session that is TLS from its first byte, which
    # aiosmtpd (counting only STARTTLS as TLS) warns about
    pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning"),
]
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


@pytest.fixture(scope="module")
def smtps(cert: tuple[Path, Path]) -> Iterator[RecordingSmtpServer]:
    """SMTPS: TLS from the first byte (no STARTTLS) and a login."""
    server = RecordingSmtpServer(implicit_tls=server_tls_context(*cert), credentials=CREDENTIALS)
    server.start()
    yield server
    server.stop()


def smtps_sections(smtp: RecordingSmtpServer) -> dict[str, Any]:
    """smtp_ssl on, smtp_starttls left unset (as an operator would write it for port 465)."""
    sections = smtp_sections(smtp) | {"smtp_ssl": True, "smtp_username": CREDENTIALS[0]}
    del sections["smtp_starttls"]
    return sections | {"smtp_password": CREDENTIALS[1]}


def live_codes(box: ServerProcess, email: str) -> int:
    """How many sign-in codes the box's database holds for `email` (0: none can be used)."""
    query = "SELECT count(*) FROM otp_code WHERE email = ?"
    return int(query_config_db(box.config, query, (email,))[0][0])


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
        failed = client.request_code("bounced@example.com")
        assert_mail_failed(failed, "answered 554")
    finally:
        smtp.reject_data = False
    refused = smtp.wait_for("bounced@example.com")
    assert not refused.accepted
    assert refused.code not in failed.text
    response = client.verify("bounced@example.com", refused.code)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_code"
    # once mail flows again, signing in works
    assert client.sign_in("bounced@example.com")["email"] == "bounced@example.com"
    # the refused code is nowhere (the account's row is what proves the scan reads the data:
    # the failed mail left no row naming the address, its rate event given back)
    assert_nothing_secret_stored(box, [refused.code], marker="bounced@example.com")
    client.close()


def test_unreachable_mail_server_gives_503(box_factory: ServerFactory):
    dead = {"backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": free_port()}
    dead["smtp_starttls"] = False
    box = box_factory(email=dead)
    client = BoxClient(box, None)
    assert_mail_failed(client.request_code("lost@example.com"), "unreachable")
    assert live_codes(box, "lost@example.com") == 0  # the code nobody got cannot be used
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


def test_implicit_tls_and_login(
    box_factory: ServerFactory, smtps: RecordingSmtpServer, cert: tuple[Path, Path]
):
    box = box_factory(email=smtps_sections(smtps), env={"SSL_CERT_FILE": str(cert[0])})
    client = BoxClient(box, smtps)
    signed_in = client.sign_in("smtps@example.com")
    assert signed_in["email"] == "smtps@example.com"
    mail = smtps.wait_for("smtps@example.com")
    assert mail.tls and mail.auth_login == CREDENTIALS[0]
    assert f"127.0.0.1:{smtps.port} (implicit TLS, with login)" in box.log_text()
    assert CREDENTIALS[1] not in box.log_text()
    client.close()


def test_implicit_tls_with_a_certificate_that_does_not_verify_gives_503(
    box_factory: ServerFactory, smtps: RecordingSmtpServer
):
    box = box_factory(email=smtps_sections(smtps))  # the test certificate is not trusted
    client = BoxClient(box, smtps)
    response = client.request_code("spoofed@example.com")
    assert_mail_failed(response, "certificate did not verify")
    assert smtps.messages_to("spoofed@example.com") == []
    assert live_codes(box, "spoofed@example.com") == 0
    assert CREDENTIALS[1] not in response.text and CREDENTIALS[1] not in box.log_text()
    client.close()


def test_implicit_tls_to_a_plain_server_fails_fast_with_503(
    box_factory: ServerFactory, smtp: RecordingSmtpServer
):
    box = box_factory(email=smtp_sections(smtp) | {"smtp_ssl": True})
    client = BoxClient(box, smtp)
    started = time.monotonic()
    response = client.request_code("plaintext@example.com")
    elapsed = time.monotonic() - started
    assert_mail_failed(response, "does not speak TLS on this port")
    assert elapsed < SMTP_TIMEOUT_SEC / 2, f"took {elapsed:.1f} s: waited for a timeout"
    assert smtp.messages_to("plaintext@example.com") == []
    assert live_codes(box, "plaintext@example.com") == 0
    client.close()


def test_smtp_ssl_with_starttls_stops_the_start_naming_both_keys(tmp_path: Path):
    email = {"backend": "smtp", "smtp_host": "127.0.0.1", "smtp_ssl": True, "smtp_starttls": True}
    sections = base_sections(tmp_path, free_port()) | {"email": email}
    config = write_config(tmp_path / "codelace.toml", sections)
    result = run_cli(config, "serve", timeout=30)
    assert result.returncode == 78  # EX_CONFIG
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(config) in lines[0]
    assert "email.smtp_ssl" in lines[0] and "email.smtp_starttls" in lines[0]


@pytest.mark.parametrize(
    ("email", "says"),
    [
        ({"smtp_ssl": True, "smtp_starttls": False, "smtp_port": 465}, "(implicit TLS, without"),
        ({"smtp_starttls": True, "smtp_port": 587}, ":587 (STARTTLS, without login)"),
        ({"smtp_starttls": False, "smtp_port": 25, "smtp_username": "u"}, "(no TLS, with login)"),
        ({"smtp_starttls": True, "smtp_port": 465}, "465 usually wants implicit TLS"),
        ({"smtp_ssl": True, "smtp_starttls": False, "smtp_port": 587}, "587 usually speaks plain"),
    ],
)
def test_the_startup_notice_names_the_tls_mode_and_a_port_mix_up(email: dict[str, Any], says: str):
    sender = {"from_address": "box@team.test"}
    notice = startup_notice(EmailConfig(backend="smtp", smtp_host="mail.test", **sender, **email))
    assert notice.startswith("sign-in codes are mailed via SMTP mail.test:")
    assert says in notice
    assert ("usually" in notice) == ("usually" in says)


@pytest.mark.parametrize("sender", ["codelace-box@localhost", "Box <box@localhost>", "a@box"])
def test_the_startup_notice_warns_of_a_from_address_no_mail_server_takes(sender: str):
    """Left at its default (or any host without a dot), the From address is refused by most
    relays (an unverified sender) and junked by receivers: said at start, not at a bounce."""
    config = EmailConfig(backend="smtp", smtp_host="mail.test", from_address=sender)
    assert "set email.from_address to an address at your domain" in startup_notice(config)
    real = EmailConfig(backend="smtp", smtp_host="mail.test", from_address="Box <box@team.test>")
    assert "from_address" not in startup_notice(real)


@pytest.mark.parametrize(
    ("email", "warned"),
    [
        ({"smtp_host": "mail.team.test", "smtp_starttls": False}, True),
        ({"smtp_host": "mail.team.test", "smtp_starttls": True}, False),
        ({"smtp_host": "mail.team.test", "smtp_ssl": True, "smtp_starttls": False}, False),
        ({"smtp_host": "127.0.0.1", "smtp_starttls": False}, False),
        ({"smtp_host": "localhost", "smtp_starttls": False}, False),
    ],
)
def test_the_startup_notice_warns_of_a_password_sent_in_the_clear(
    email: dict[str, Any], warned: bool
):
    config = EmailConfig(backend="smtp", smtp_username="u", smtp_password="p", **email)
    assert ("password goes over the network unencrypted" in startup_notice(config)) == warned


def test_smtp_without_a_host_stops_the_start(tmp_path: Path):
    sections = base_sections(tmp_path, free_port()) | {"email": {"backend": "smtp"}}
    config = write_config(tmp_path / "codelace.toml", sections)
    result = run_cli(config, "serve", timeout=30)
    assert result.returncode == 78  # EX_CONFIG
    assert "email.smtp_host" in result.stderr and "Traceback" not in result.stderr


def test_a_relay_with_a_self_signed_certificate_is_trusted_through_smtp_ca_file(
    box_factory: ServerFactory, tls_smtp: RecordingSmtpServer, cert: tuple[Path, Path]
):
    """An office relay with its own certificate: the operator names its PEM (relative to the
    config file, as the other paths) and only the mail server's check trusts it, not the whole
    process (as SSL_CERT_FILE would, replacing the CAs every upstream's TLS relies on)."""
    box = box_factory(email=tls_sections(tls_smtp, CREDENTIALS[1]))
    copy = box.config.parent / "relay-ca.pem"
    copy.write_bytes(cert[0].read_bytes())
    box.stop()
    with box.config.open("a") as config:
        config.write('smtp_ca_file = "relay-ca.pem"\n')  # [email] is the file's last section
    box.start()
    client = BoxClient(box, tls_smtp)
    assert client.sign_in("office@example.com")["email"] == "office@example.com"
    assert tls_smtp.wait_for("office@example.com").tls
    assert f"certificate checked against {copy}" in box.log_text()
    client.close()


def test_an_smtp_ca_file_that_cannot_be_read_stops_the_start(tmp_path: Path):
    email = {"backend": "smtp", "smtp_host": "127.0.0.1", "smtp_ca_file": "missing.pem"}
    sections = base_sections(tmp_path, free_port()) | {"email": email}
    config = write_config(tmp_path / "codelace.toml", sections)
    result = run_cli(config, "serve", timeout=30)
    assert result.returncode == 78  # EX_CONFIG
    assert "email.smtp_ca_file" in result.stderr and "missing.pem" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_start_line_that_warns_of_the_mail_setup_is_a_warning(
    box_factory: ServerFactory, smtp: RecordingSmtpServer
):
    """A hint that mail will be refused or junked (or a port mix-up) logged at INFO is lost to
    an operator whose log shows warnings only; a plain SMTP setup stays at INFO."""
    warned = box_factory(email=smtp_sections(smtp) | {"from_address": "codelace-box@localhost"})
    line = warned.wait_for_log(r".*sign-in codes are mailed via SMTP.*")[0]
    assert "WARNING" in line and "set email.from_address" in line
    plain = box_factory(email=smtp_sections(smtp))
    line = plain.wait_for_log(r".*sign-in codes are mailed via SMTP.*")[0]
    assert "INFO" in line and "WARNING" not in line


def test_port_465_without_smtp_ssl_is_warned_of_at_start_with_the_fix(
    box_factory: ServerFactory, smtp: RecordingSmtpServer
):
    """STARTTLS (the default) against an implicit-TLS port hangs or fails obscurely at the
    first mail: the start line is a warning that names the fix (the README's mail section
    offers both modes, so the box warns rather than refuses)."""
    email = smtp_sections(smtp) | {"from_address": "box@team.test", "smtp_port": 465}
    line = box_factory(email=email).wait_for_log(r".*sign-in codes are mailed via SMTP.*")[0]
    assert "WARNING" in line and "465 usually wants implicit TLS: set email.smtp_ssl = true" in line


def test_a_password_beyond_ascii_logs_in(box_factory: ServerFactory, cert: tuple[Path, Path]):
    """AUTH PLAIN carries UTF-8 (RFC 4616), but smtplib encodes credentials as ASCII: a
    password with an umlaut or a euro sign failed every sign-in with a 500."""
    credentials = ("mailer@box.test", "grüße-aus-köln-€5")
    server = RecordingSmtpServer(tls_context=server_tls_context(*cert), credentials=credentials)
    server.start()
    try:
        email = tls_sections(server, credentials[1])
        box = box_factory(email=email, env={"SSL_CERT_FILE": str(cert[0])})
        client = BoxClient(box, server)
        assert client.sign_in("umlaut@example.com")["email"] == "umlaut@example.com"
        assert server.wait_for("umlaut@example.com").auth_login == credentials[0]
        assert credentials[1] not in box.log_text()
        client.close()
        wrong = tls_sections(server, "grüße-aus-bonn")
        client = BoxClient(box_factory(email=wrong, env={"SSL_CERT_FILE": str(cert[0])}), server)
        assert_mail_failed(client.request_code("umlaut@example.com"), "refused the login")
        client.close()
    finally:
        server.stop()


def test_credentials_read_with_a_trailing_newline_log_in(
    box_factory: ServerFactory, tls_smtp: RecordingSmtpServer, cert: tuple[Path, Path]
):
    """A login and password kept in files (a secret store, `--env-file`, a TOML multi-line
    string) often end with a line break: sent as they were, every sign-in failed with 'the
    mail server refused the login'. Trailing CR/LF are not part of them."""
    env = {
        "SSL_CERT_FILE": str(cert[0]),
        "CODELACE_EMAIL_SMTP_USERNAME": CREDENTIALS[0] + "\r\n",
        "CODELACE_EMAIL_SMTP_PASSWORD": CREDENTIALS[1] + "\n",
    }
    box = box_factory(email=smtp_sections(tls_smtp) | {"smtp_starttls": True}, env=env)
    client = BoxClient(box, tls_smtp)
    assert client.sign_in("newline@example.com")["email"] == "newline@example.com"
    assert tls_smtp.wait_for("newline@example.com").auth_login == CREDENTIALS[0]
    client.close()
