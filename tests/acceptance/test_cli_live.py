"""CLI changes reach a running `serve` with no restart (README: "on the next request" for keys
and accounts, "within a second" for the catalog), seen only over HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.acceptance.cli_tools import Box
from tests.fakes.openai_upstream import FakeOpenAI
from tests.support import TLS, ServerProcess
from tests.timing import seen_within

pytestmark = pytest.mark.timeout(120)
MODEL = "live/gpt-live"


class Live:
    """A running box made and changed with the CLI."""

    def __init__(self, box: Box, server: ServerProcess) -> None:
        self.box = box
        self.server = server

    def get(self, path: str, key: str | None = None) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.get(self.server.base_url + path, headers=headers, timeout=10, verify=TLS)

    def chat(self, key: str) -> httpx.Response:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
        headers = {"authorization": f"Bearer {key}"}
        return httpx.post(
            self.server.base_url + "/v1/chat/completions",
            json=body,
            headers=headers,
            timeout=10,
            verify=TLS,
        )

    def user_with_key(self, email: str, credit: str = "5") -> str:
        self.box.ok("users", "create", email)
        self.box.ok("credit", email, credit, "--reason", "live test")
        return self.box.ok("keys", "create", email).strip()


def within_a_second(what: str, seen: Callable[[], bool]) -> None:
    """Seen by a request begun within a second of the change (the CLI's, just done)."""
    seen_within(seen, time.monotonic(), 1.0, f"{what} not seen by the server within a second")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    fake = FakeOpenAI().start()
    box = Box.create(tmp_path_factory.mktemp("live"))
    box.ok("providers", "add", "live", "--kind", "openai", "--base-url", fake.base_url,
           "--key", "sk-live-0001")  # fmt: skip
    box.ok("models", "set", MODEL, "--input-per-1m", "1", "--output-per-1m", "2")
    server = ServerProcess(box.config, box.port).start()
    try:
        yield Live(box, server)
    finally:
        server.stop()
        fake.stop()


def test_a_key_revoked_with_the_cli_fails_on_the_next_request(live: Live) -> None:
    key = live.user_with_key("revoke@live.test")
    assert live.get("/api/v1/auth/me", key).status_code == 200
    (listed,) = live.box.json("keys", "list", "revoke@live.test")
    live.box.ok("keys", "revoke", listed["id"])
    answer = live.get("/api/v1/auth/me", key)
    assert answer.status_code == 401, answer.text


def test_an_account_disabled_with_the_cli_is_refused_on_the_next_request(live: Live) -> None:
    key = live.user_with_key("disable@live.test")
    live.box.ok("users", "disable", "disable@live.test")
    refused = live.get("/api/v1/auth/me", key)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "account_disabled"
    live.box.ok("users", "enable", "disable@live.test")
    assert live.get("/api/v1/auth/me", key).status_code == 200


def test_credit_from_the_cli_shows_in_the_balance_at_once(live: Live) -> None:
    key = live.user_with_key("credit@live.test", credit="5")
    live.box.ok("credit", "credit@live.test", "2.5", "--reason", "more")
    live.box.ok("credit", "credit@live.test", "-1.25", "--reason", "less")
    balance: dict[str, Any] = live.get("/api/v1/customer/balance", key).json()
    assert balance == {"credit_balance_usd": 6.25}


def test_catalog_changes_from_the_cli_apply_within_a_second(live: Live) -> None:
    def pricing() -> dict[str, Any]:
        rows = live.get("/api/v1/public/pricing").json()
        return {row["model"]: row for row in rows}

    def listed() -> list[str]:
        return [m["id"] for m in live.get("/v1/models").json()["data"]]

    live.box.ok("models", "set", MODEL, "--input-per-1m", "3", "--output-per-1m", "4")
    within_a_second("the new price", lambda: pricing()[MODEL]["input_per_1m"] == 3)
    live.box.ok("models", "disable", MODEL)
    within_a_second("the disabled model", lambda: MODEL not in listed())
    assert MODEL not in pricing(), "a disabled model has no public price"
    live.box.ok("models", "enable", MODEL)
    within_a_second("the enabled model", lambda: MODEL in listed())
    assert pricing()[MODEL] == {"model": MODEL, "input_per_1m": 3, "output_per_1m": 4,
                                "cache_read_per_1m": 3, "cache_write_per_1m": 3,
                                "cache_write_1h_per_1m": 3}  # fmt: skip


def test_a_provider_disabled_with_the_cli_answers_503_within_a_second(live: Live) -> None:
    key = live.user_with_key("provider@live.test")
    assert live.chat(key).status_code == 200
    live.box.ok("providers", "disable", "live")
    within_a_second("the disabled provider", lambda: live.chat(key).status_code == 503)
    listed = [m["id"] for m in live.get("/v1/models").json()["data"]]
    assert MODEL not in listed, "a model whose provider is disabled cannot be served"
    assert live.get(f"/v1/models/{MODEL}").status_code == 404
    live.box.ok("providers", "enable", "live")
    within_a_second("the enabled provider", lambda: live.chat(key).status_code == 200)
    assert MODEL in [m["id"] for m in live.get("/v1/models").json()["data"]]
