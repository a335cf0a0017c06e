"""Fixtures of the outside-in acceptance suite: one fully wired box per test module (and, for
the CLI modules, a data dir without a server).

The box is a real `codelace-box serve` process with a fake OpenAI upstream, the Stripe
double and a recording SMTP server behind it; its catalog and accounts are set up with the
real CLI. Tests talk to it only over HTTP (httpx, the `openai` SDK), as an outside client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance import cli_tools
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.smtp_server import RecordingSmtpServer
from tests.fakes.stripe_double import StripeDouble
from tests.support import BoxDriver, ServerProcess, base_sections, free_port, write_config

MODEL = "fake/gpt-test"
UPSTREAM_MODEL = "gpt-4o-mini-2024-07-18"
CHEAP_MODEL = "fake/cheap"
STRIPE_KEY = "sk_test_51AcceptanceDoubleKey000000000000000000"
WEBHOOK_SECRET = "whsec_acceptancedoublesigningsecret0000000"
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@dataclass
class Box(BoxDriver):
    """One running box and the fakes behind it."""

    email_prefix = "accept"
    email_domain = "acc.test"

    server: ServerProcess
    config: Path
    upstream: FakeOpenAI
    stripe: StripeDouble
    smtp: RecordingSmtpServer
    shared_key: str = ""  # an account with credit, for tests that do not look at balances
    disabled_key: str = ""  # the key of a disabled account
    revoked_key: str = ""  # a revoked key of an active account

    def sign_in(self, client: httpx.Client, email: str) -> dict[str, Any]:
        """Request a code, read it from the mail, verify it: the verify answer."""
        before = len(self.smtp.messages_to(email))
        asked = client.post("/api/v1/auth/otp/request", json={"email": email})
        assert asked.status_code == 200, asked.text
        code = self.smtp.wait_for(email, count=before + 1).code
        verified = client.post("/api/v1/auth/otp/verify", json={"email": email, "code": code})
        assert verified.status_code == 200, verified.text
        body: dict[str, Any] = verified.json()
        return body


def assert_envelope(response: httpx.Response, status: int, code: str | None = None) -> None:
    """The error of docs/http-api.md "Conventions": the status, the OpenAI envelope with string
    fields, a request id."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers.get("x-request-id"), "no x-request-id on an error"
    error = response.json()["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    assert isinstance(error["code"], str) and error["code"]
    if code is not None:
        assert error["code"] == code, error


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_upstream(request: pytest.FixtureRequest) -> None:
    if "upstream" in request.fixturenames:
        request.getfixturevalue("upstream").reset()


@pytest.fixture(scope="module")
def stripe_double() -> Iterator[StripeDouble]:
    double = StripeDouble(STRIPE_KEY, WEBHOOK_SECRET).start()
    yield double
    double.stop()


@pytest.fixture(scope="module")
def smtp() -> Iterator[RecordingSmtpServer]:
    server = RecordingSmtpServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory) -> cli_tools.Box:
    """The CLI modules' box (a config and a migrated data dir, no server); every test uses its
    own emails and names."""
    built = cli_tools.Box.create(tmp_path_factory.mktemp("cli"))
    built.ok("migrate")
    return built


def box_sections(
    folder: Path, smtp: RecordingSmtpServer, double: StripeDouble
) -> dict[str, dict[str, Any]]:
    """The whole config: SMTP mail to the recorder, Stripe to the double, a small body cap."""
    sections = base_sections(folder, free_port())
    sections["server"]["max_body_bytes"] = 200_000
    sections["email"] = {
        "backend": "smtp",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp.port,
        "smtp_starttls": False,
        "from_address": "codelace@box.test",
    }
    sections["stripe"] = {
        "secret_key": double.secret_key,
        "webhook_secret": double.webhook_secret,
        "api_base": double.url,
        "min_topup_usd": 10,
        "trial_credit_usd": 1,
    }
    sections["auth"] = {"signup": "domains", "allowed_email_domains": ["acc.test"]}
    sections["gateway"] = {"read_timeout_sec": 2, "max_retries": 0}
    return sections


@pytest.fixture(scope="module")
def box(
    tmp_path_factory: pytest.TempPathFactory,
    upstream: FakeOpenAI,
    stripe_double: StripeDouble,
    smtp: RecordingSmtpServer,
) -> Iterator[Box]:
    """The module's box, its catalog made with the CLI (two models of one openai provider)."""
    folder = tmp_path_factory.mktemp("acceptance")
    sections = box_sections(folder, smtp, stripe_double)
    config = write_config(folder / "codelace.toml", sections)
    server = ServerProcess(config, int(sections["server"]["port"]))
    built = Box(server, config, upstream, stripe_double, smtp)
    provider = ("providers", "add", "fake", "--kind", "openai", "--base-url", upstream.base_url)
    built.cli(*provider, "--key", "sk-fake-acceptance-0001")
    built.cli("models", "set", MODEL, "--input-per-1m", "2.5", "--output-per-1m", "10",
              "--upstream-model", UPSTREAM_MODEL, "--max-output-tokens", "1000")  # fmt: skip
    spare = ("providers", "add", "spare", "--kind", "openai", "--base-url", upstream.base_url)
    built.cli(*spare, "--key", "sk-fake-acceptance-0002")
    built.cli("models", "set", "spare/model", "--input-per-1m", "1", "--output-per-1m", "1")
    built.cli("models", "set", CHEAP_MODEL, "--input-per-1m", "0.01", "--output-per-1m", "0.02")
    server.start()
    built.shared_key = built.new_user("100")[1]
    disabled_email, built.disabled_key = built.new_user()
    built.cli("users", "disable", disabled_email)
    revoked_email, built.revoked_key = built.new_user()
    key_id = built.cli("keys", "list", revoked_email, "--json")
    built.cli("keys", "revoke", json.loads(key_id)[0]["id"])
    yield built
    server.stop()
