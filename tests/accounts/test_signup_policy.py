"""Who may create an account: auth.signup = open (tested elsewhere), domains, invite.

The code request answers the same for everyone; the policy is enforced at verify, after the
code proved the caller owns the address, with a 403 signup_not_allowed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.accounts.conftest import BoxClient, ServerFactory, cli, smtp_sections
from tests.fakes.smtp_server import RecordingSmtpServer

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def domains_box(box_factory: ServerFactory, smtp: RecordingSmtpServer) -> Iterator[BoxClient]:
    allowed = ["example.com", "@Team.Example.org", "xn--strae-oqa.de"]  # the last: straße.de
    auth = {"signup": "domains", "allowed_email_domains": allowed}
    client = BoxClient(box_factory(auth=auth, email=smtp_sections(smtp)), smtp)
    yield client
    client.close()


@pytest.fixture(scope="module")
def invite_box(box_factory: ServerFactory, smtp: RecordingSmtpServer) -> Iterator[BoxClient]:
    client = BoxClient(box_factory(auth={"signup": "invite"}, email=smtp_sections(smtp)), smtp)
    yield client
    client.close()


def assert_signup_refused(response: httpx.Response) -> str:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["type"] == "permission_error" and error["code"] == "signup_not_allowed"
    return str(error["message"])


def request_answer(client: BoxClient, email: str) -> tuple[int, dict[str, object]]:
    response = client.request_code(email)
    return response.status_code, response.json() | {"email": "-"}


@pytest.mark.parametrize("email", ["amy@example.com", "ben@TEAM.example.org"])
def test_domains_lets_listed_domains_sign_up(domains_box: BoxClient, email: str):
    assert domains_box.sign_in(email)["email"] == email.lower()


@pytest.mark.parametrize("email", ["eve@other.com", "eve@sub.example.com", "eve@example.com.evil"])
def test_domains_refuses_other_domains_at_verify(domains_box: BoxClient, email: str):
    assert request_answer(domains_box, email) == request_answer(domains_box, "amy@example.com")
    code = domains_box.smtp.latest_code(email) if domains_box.smtp else ""
    message = assert_signup_refused(domains_box.verify(email, code))
    assert "example.com" in message and email.split("@")[1] in message
    # the refused address got no account and no key
    assert domains_box.verify(email, code).json()["error"]["code"] == "invalid_code"
    listed = json.loads(cli(domains_box.server, "users", "list", "--json"))
    assert email.lower() not in {user["email"] for user in listed}


def test_an_idn_domain_is_mailed_and_matched_in_its_idna_2008_form(domains_box: BoxClient):
    """straße.de is xn--strae-oqa.de, as registries and mail servers have it (IDNA 2008), not
    strasse.de (IDNA 2003), another domain whose mailbox got the code."""
    assert domains_box.smtp is not None
    answer = domains_box.request_code("Max@Straße.de")
    assert answer.status_code == 200 and answer.json()["email"] == "max@xn--strae-oqa.de"
    code = domains_box.smtp.wait_for("max@xn--strae-oqa.de").code
    assert domains_box.smtp.messages_to("max@strasse.de") == []
    signed_in = domains_box.verify("max@straße.de", code)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json()["email"] == "max@xn--strae-oqa.de"


def test_domains_lets_an_admin_created_outsider_in(domains_box: BoxClient):
    email = "contractor@elsewhere.net"
    cli(domains_box.server, "users", "create", email)
    assert domains_box.sign_in(email)["email"] == email


def test_invite_refuses_strangers_with_the_same_request_answer(invite_box: BoxClient):
    cli(invite_box.server, "users", "create", "invited@example.com")
    assert request_answer(invite_box, "stranger@example.com") == request_answer(
        invite_box, "invited@example.com"
    )
    assert invite_box.smtp is not None
    code = invite_box.smtp.latest_code("stranger@example.com")
    message = assert_signup_refused(invite_box.verify("stranger@example.com", code))
    assert "invitation" in message
    listed = cli(invite_box.server, "users", "list", "--json")
    assert "stranger@example.com" not in listed


def test_invite_lets_invited_people_in(invite_box: BoxClient):
    email = "newhire@example.com"
    cli(invite_box.server, "users", "create", email)
    signed_in = invite_box.sign_in(email)
    assert signed_in["email"] == email
    assert invite_box.get("/api/v1/auth/me", signed_in["api_key"]).status_code == 200
