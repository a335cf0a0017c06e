"""catalog/keycheck.py: the right request per provider kind against real fake upstreams, and a
verdict that never contains the key."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from codelace_box.catalog.keycheck import check_key, check_request, redact, verdict
from codelace_box.errors import InvalidRequest
from tests.fakes.models_upstream import FakeModelsUpstream
from tests.fakes.private_ca import serve_under_a_private_ca
from tests.support import free_port

pytestmark = pytest.mark.timeout(30)
KEY = "sk-ant-api03-keycheck-test-ABCDEFGH1234"


@pytest.fixture(scope="module")
def anthropic_upstream() -> Iterator[FakeModelsUpstream]:
    fake = FakeModelsUpstream("anthropic", {KEY}).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def openai_upstream() -> Iterator[FakeModelsUpstream]:
    fake = FakeModelsUpstream("openai", {KEY}, echo_key=True).start()
    yield fake
    fake.stop()


async def test_anthropic_key_is_sent_as_x_api_key_with_a_version(
    anthropic_upstream: FakeModelsUpstream,
) -> None:
    result = await check_key("anthropic", anthropic_upstream.base_url, KEY)
    assert (result.ok, result.status, result.message) == (
        True,
        200,
        "the key works (1 model listed)",
    )
    sent = anthropic_upstream.requests[-1]
    assert sent["x-api-key"] == KEY and sent["anthropic-version"] == "2023-06-01"
    assert "authorization" not in sent


async def test_anthropic_refusal_carries_the_upstream_message(
    anthropic_upstream: FakeModelsUpstream,
) -> None:
    result = await check_key("anthropic", anthropic_upstream.base_url + "/", KEY + "x")
    assert not result.ok and result.refused
    assert result.message == "the upstream refused the key (401): invalid x-api-key"


async def test_openai_key_is_sent_as_bearer_and_an_echoed_key_is_masked(
    openai_upstream: FakeModelsUpstream,
) -> None:
    good = await check_key("openai", openai_upstream.base_url, KEY)
    assert good.ok and good.message == "the key works (2 models listed)"
    assert openai_upstream.requests[-1]["authorization"] == f"Bearer {KEY}"
    wrong = "sk-proj-wrong-key-0123456789abcdef"
    bad = await check_key("openai", openai_upstream.base_url, wrong)
    assert (bad.ok, bad.status) == (False, 401)
    assert wrong not in bad.message
    assert bad.message.startswith("the upstream refused the key (401): Incorrect API key ")
    assert "sk-…cdef" in bad.message


async def test_a_restricted_key_that_may_not_list_models_works(
    openai_upstream: FakeModelsUpstream,
) -> None:
    """OpenAI's restricted keys may lack the Models read scope and still call the models: the
    401 `missing_scope` of the model list is no refusal of the key (a probe that said so would
    take a working key out of the rotation for good)."""
    restricted = "sk-proj-restricted-key-0123456789"
    openai_upstream.restricted_keys.add(restricted)
    result = await check_key("openai", openai_upstream.base_url, restricted)
    assert (result.ok, result.status, result.refused) == (True, 401, False)
    assert result.message.startswith("the key works (it may not list models: You have ")
    assert "Missing scopes: api.model.read" in result.message
    other = await check_key("openai", openai_upstream.base_url, restricted[:-1] + "x")
    assert (other.ok, other.status) == (False, 401)


async def test_no_answer_is_reported_without_the_key() -> None:
    port = free_port()  # nothing listens there
    result = await check_key("openai", f"http://127.0.0.1:{port}/v1", KEY, timeout_sec=2)
    assert (result.ok, result.status) == (False, None)
    assert result.message.startswith(f"cannot reach http://127.0.0.1:{port}/v1/models")
    assert KEY not in result.message


def test_requests_per_kind() -> None:
    assert check_request("openai", "https://api.openai.com/v1/", "k") == (
        "https://api.openai.com/v1/models",
        {"authorization": "Bearer k"},
    )
    assert check_request("anthropic", "https://api.anthropic.com", "k") == (
        "https://api.anthropic.com/v1/models",
        {"x-api-key": "k", "anthropic-version": "2023-06-01"},
    )
    # OpenRouter lists its models to anyone: its key endpoint is what needs the key.
    assert check_request("openai", "https://openrouter.ai/api/v1", "k")[0] == (
        "https://openrouter.ai/api/v1/key"
    )
    with pytest.raises(InvalidRequest, match="cannot test a key of provider kind 'azure'"):
        check_request("azure", "https://x", "k")


def test_verdicts_for_odd_bodies() -> None:
    assert verdict(200, b"not json", KEY).message == "the key works"
    assert verdict(500, b"", KEY).message == "the upstream answered 500: (empty body)"
    assert verdict(403, b'{"error": "forbidden"}', KEY).message == (
        "the upstream refused the key (403): forbidden"
    )
    long_echo = ("x" * 190 + KEY).encode()  # the key straddles the cut: still masked first
    message = verdict(502, long_echo, KEY).message
    assert KEY[:12] not in message and len(message) <= len("the upstream answered 502: ") + 200
    assert redact(f"key={KEY}!", KEY) == "key=sk-…1234!"


class TlsModelsUpstream(FakeModelsUpstream):
    """The openai fake over HTTPS, with a certificate of its own CA."""

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/v1"


async def test_the_key_check_trusts_the_cas_the_calls_trust(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The calls to an upstream (aiohttp) trusts OpenSSL's CAs: the system's store, where an operator
    # installs a private CA (a vLLM behind TLS); the check (httpx) trusted only certifi's
    # bundle, so `providers key-enable`, the admin's test and the probe of a flagged key all
    # said "certificate verify failed" of a key whose calls worked. The system's store is
    # stood in for (tests/fakes/private_ca.py).
    fake = TlsModelsUpstream("openai", {KEY})
    fake.ssl_context = serve_under_a_private_ca(tmp_path, monkeypatch)
    fake.start()
    try:
        calls_tls = ssl.create_default_context()  # aiohttp's default (made as it is imported)
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=calls_tls)) as calls,
            calls.get(fake.base_url + "/models") as seen,
        ):
            assert seen.status == 401  # the calls' TLS works (no key sent)
        result = await check_key("openai", fake.base_url, KEY)
        assert (result.ok, result.message) == (True, "the key works (2 models listed)")
    finally:
        fake.stop()
