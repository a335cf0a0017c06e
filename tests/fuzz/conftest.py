"""Fixtures of the fuzz suite: one real box per session of this package, behind fake upstreams
of both kinds (an `openai` provider, one that takes the Responses API natively, an `anthropic`
one), the Stripe double and a recording SMTP server; the portal on. Tests send it hostile and
malformed requests over HTTP and raw sockets and check the contract of every answer."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.smtp_server import RecordingSmtpServer
from tests.fakes.stripe_double import StripeDouble
from tests.pg_cluster import query_config_db
from tests.support import TLS, BoxDriver, ServerProcess, base_sections, free_port, write_config

CHAT_MODEL = "oai/gpt-fuzz"
NATIVE_MODEL = "native/gpt-fuzz"
CLAUDE_MODEL = "anth/claude-fuzz"
OPENAI_KEY = "sk-openai-fuzz-provider-0001"
ANTHROPIC_KEY = "sk-ant-fuzz-provider-0002"
STRIPE_KEY = "sk_test_51FuzzDoubleKey00000000000000000000000"
WEBHOOK_SECRET = "whsec_fuzzdoublesigningsecret00000000000000"
ANTHROPIC_ROUTES = ("/v1/messages", "/v1/messages/count_tokens")
REQUEST_ID = re.compile(r"^req_[0-9a-f]{24}$")


@dataclass
class FuzzBox(BoxDriver):
    """The running box, its fakes, a funded user (key and portal session) for the tests."""

    server: ServerProcess
    config: Path
    openai: FakeOpenAI
    anthropic: FakeAnthropic
    smtp: RecordingSmtpServer
    email: str = ""
    key: str = ""

    email_prefix = "fuzz"
    email_domain = "fuzz.test"

    def secrets(self) -> list[str]:
        """What must never be shown in an answer: provider keys, Stripe's, the user's key."""
        return [OPENAI_KEY, ANTHROPIC_KEY, STRIPE_KEY, WEBHOOK_SECRET, self.key]

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of the box's database, SQLite or PostgreSQL (`?` parameters)."""
        return query_config_db(self.config, sql, params)

    def raw(self, request: bytes) -> bytes:
        """Send `request` on a socket of its own; everything the box answers until it closes."""
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=15) as client:
            client.sendall(request)
            answer = b""
            try:
                while data := client.recv(65536):
                    answer += data
            except ConnectionResetError:
                pass
        return answer

    def portal(self, email: str) -> httpx.Client:
        """A client signed in to the portal as `email` (cookie, Origin, CSRF token set)."""
        client = httpx.Client(
            base_url=self.url, headers={"origin": self.url}, timeout=30, verify=TLS
        )
        before = len(self.smtp.messages_to(email))
        asked = client.post("/portal/api/signin/code", json={"email": email})
        assert asked.status_code == 200, asked.text
        code = self.smtp.wait_for(email, count=before + 1).code
        verified = client.post("/portal/api/signin/verify", json={"email": email, "code": code})
        assert verified.status_code == 200, verified.text
        client.headers["x-csrf-token"] = verified.json()["csrf_token"]
        return client


def error_problems(response: httpx.Response, path: str, secrets: list[str]) -> list[str]:
    """What is wrong with an answer to a hostile request, by the contract: never a 500, always
    a request id, no traceback or secret, and an error in the envelope of its route."""
    found = []
    if response.status_code >= 500 and response.status_code not in (502, 503, 504):
        found.append(f"status {response.status_code}")
    if not REQUEST_ID.match(response.headers.get("x-request-id", "")):
        found.append("no x-request-id")
    text = response.text
    if "Traceback" in text or 'File "' in text:
        found.append("a traceback in the body")
    found.extend("a secret in the body" for secret in secrets if secret and secret in text)
    if response.status_code < 400 or response.request.method == "HEAD":
        return found
    try:
        body = response.json()
    except ValueError:
        return [*found, f"an error that is no JSON: {text[:200]!r}"]
    error = body.get("error") if isinstance(body, dict) else None
    fields_ok = isinstance(error, dict) and all(
        isinstance(error.get(name), str) and error[name] for name in ("message", "type")
    )
    if path.partition("?")[0] in ANTHROPIC_ROUTES:
        fields_ok = fields_ok and body.get("type") == "error"
    else:
        fields_ok = fields_ok and isinstance(error, dict) and isinstance(error.get("code"), str)
    if not fields_ok:
        found.append(f"not the route's envelope: {text[:200]}")
    return found


@pytest.fixture(scope="package")
def fakes() -> Iterator[tuple[FakeOpenAI, FakeAnthropic, StripeDouble, RecordingSmtpServer]]:
    openai = FakeOpenAI().start()
    anthropic = FakeAnthropic(api_keys=(ANTHROPIC_KEY,)).start()
    stripe = StripeDouble(STRIPE_KEY, WEBHOOK_SECRET).start()
    smtp = RecordingSmtpServer().start()
    yield openai, anthropic, stripe, smtp
    for fake in (smtp, stripe, anthropic, openai):
        fake.stop()


@pytest.fixture(scope="package")
def box(
    tmp_path_factory: pytest.TempPathFactory,
    fakes: tuple[FakeOpenAI, FakeAnthropic, StripeDouble, RecordingSmtpServer],
) -> Iterator[FuzzBox]:
    openai, anthropic, stripe, smtp = fakes
    folder = tmp_path_factory.mktemp("fuzz")
    sections = base_sections(folder, free_port())
    sections["server"]["max_body_bytes"] = 1_000_000
    sections["email"] = {"backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": smtp.port,
                         "smtp_starttls": False, "from_address": "box@fuzz.test"}  # fmt: skip
    sections["stripe"] = {"secret_key": STRIPE_KEY, "webhook_secret": WEBHOOK_SECRET,
                          "api_base": stripe.url, "min_topup_usd": 10}  # fmt: skip
    sections["gateway"] = {"read_timeout_sec": 5, "max_retries": 0}
    config = write_config(folder / "codelace.toml", sections)
    server = ServerProcess(config, int(sections["server"]["port"]))
    built = FuzzBox(server, config, openai, anthropic, smtp)
    built.cli("migrate")
    for name, kind, url, key, extra in (
        ("oai", "openai", openai.base_url, OPENAI_KEY, ()),
        ("native", "openai", openai.base_url, OPENAI_KEY, ("--responses-api",)),
        ("anth", "anthropic", anthropic.base_url, ANTHROPIC_KEY, ()),
    ):
        built.cli("providers", "add", name, "--kind", kind, "--base-url", url, "--key", key, *extra)
    for model in (CHAT_MODEL, NATIVE_MODEL, CLAUDE_MODEL):
        built.cli("models", "set", model, "--input-per-1m", "1", "--output-per-1m", "2",
                  "--max-output-tokens", "1000")  # fmt: skip
    server.start()
    built.email, built.key = built.new_user("100")
    yield built
    assert server.stop() == 0
    log = server.log_text()
    for secret in built.secrets():
        assert secret not in log, "a secret reached the log"


# What a refused request must leave as it was: how many holds, usage rows and ledger entries
# there are, and every key, account and payment as the database has it (both engines' SQL)
WATCH = " UNION ALL ".join([
    "SELECT 'counts', CAST((SELECT count(*) FROM hold) AS TEXT), "
    "CAST((SELECT count(*) FROM usage_record) AS TEXT), "
    "CAST((SELECT count(*) FROM ledger_entry) AS TEXT), NULL, NULL, NULL",
    "SELECT 'key', uuid, name, CAST(revoked_at AS TEXT), CAST(limit_nanos AS TEXT), "
    "limit_reset, CAST(expires_at AS TEXT) || ' ' || COALESCE(allowed_models, '') FROM api_key",
    "SELECT 'account', uuid, display_name, status, CAST(balance_nanos AS TEXT), "
    "CAST(held_nanos AS TEXT), NULL FROM \"user\"",
    "SELECT 'payment', uuid, status, CAST(amount_nanos AS TEXT), NULL, NULL, NULL FROM payment",
])  # fmt: skip


def ledger_state(box: FuzzBox) -> list[tuple[Any, ...]]:
    """The database's state as WATCH reads it, in a stable order."""
    return sorted(box.query(WATCH), key=repr)
