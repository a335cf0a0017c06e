"""CORS on a real box, checked in raw HTTP: preflights on every route family the key API has,
the answers (JSON, SSE, and every kind of error) a browser may read, the routes that stay
without CORS (portal, /metrics, /healthz, sign-in codes, the Stripe webhook), an origin list,
and CORS off. Requests without Origin get no CORS header at all."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, Box, BoxFactory
from tests.support import TLS

pytestmark = pytest.mark.timeout(90)
PAGE = "http://127.0.0.1:5173"  # a chat UI's dev server
OTHER = "https://evil.example"
ASKED = "authorization, content-type, x-stainless-os, anthropic-dangerous-direct-browser-access"
HELLO = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello"}]}
EXPOSED = "x-request-id, x-codelace-cost-usd, retry-after, request-id, x-should-retry"

# (path, a method it takes): each route family CORS covers
COVERED = [
    ("/v1/chat/completions", "POST"),
    ("/v1/messages", "POST"),
    ("/v1/messages/count_tokens", "POST"),
    ("/v1/responses", "POST"),
    ("/v1/embeddings", "POST"),
    ("/v1/models", "GET"),
    ("/v1/models/fake/gpt-test", "GET"),
    ("/api/v1/auth/me", "GET"),
    ("/api/v1/auth/me", "PATCH"),
    ("/api/v1/auth/key", "POST"),
    ("/api/v1/auth/key/key_123", "DELETE"),
    ("/api/v1/customer/balance", "GET"),
    ("/api/v1/customer/usage", "GET"),
    ("/api/v1/customer/payment", "GET"),
    ("/api/v1/stripe/checkout", "POST"),
    ("/api/v1/stripe/setup", "POST"),
    ("/api/v1/public/pricing", "GET"),
]
NOT_COVERED = [
    ("/api/v1/stripe/webhook", "POST"),
    ("/api/v1/auth/otp/request", "POST"),
    ("/healthz", "GET"),
    ("/metrics", "GET"),
    ("/portal/api/session", "GET"),
    ("/portal/api/keys", "POST"),
    ("/", "GET"),
]


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    return box_factory()


@pytest.fixture(scope="module")
def listed(box_factory: BoxFactory) -> Box:
    return box_factory(server={"cors_allow_origins": [PAGE, "https://chat.example.com"]})


@pytest.fixture(scope="module")
def off(box_factory: BoxFactory) -> Box:
    return box_factory(server={"cors_allow_origins": []})


@pytest.fixture(scope="module")
def raw(box: Box) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=box.url, timeout=30, verify=TLS) as client:
        yield client


def preflight(client: httpx.Client, path: str, method: str, origin: str = PAGE) -> httpx.Response:
    headers = {"origin": origin, "access-control-request-method": method,
               "access-control-request-headers": ASKED}  # fmt: skip
    return client.options(path, headers=headers)


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def assert_readable(response: httpx.Response, allow_origin: str = "*") -> None:
    """What a browser needs to hand this answer to the page, and nothing about credentials."""
    assert response.headers["access-control-allow-origin"] == allow_origin
    assert response.headers["access-control-expose-headers"] == EXPOSED
    assert "access-control-allow-credentials" not in response.headers
    assert response.headers["x-request-id"].startswith("req_")


def assert_405(response: httpx.Response) -> None:
    """The 405 in the error envelope every OPTIONS got before CORS, with no CORS header."""
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert cors_headers(response) == {}


@pytest.mark.parametrize(("path", "method"), COVERED)
def test_a_preflight_on_each_route_family_is_allowed(
    raw: httpx.Client, path: str, method: str
) -> None:
    response = preflight(raw, path, method)
    assert response.status_code == 204, response.text
    assert response.content == b""
    headers = response.headers
    assert headers["access-control-allow-origin"] == "*"
    assert method in headers["access-control-allow-methods"].split(", ")
    assert headers["access-control-allow-headers"] == ASKED
    assert headers["access-control-max-age"] == "7200"
    assert "Access-Control-Request-Headers" in headers["vary"]
    assert "access-control-allow-credentials" not in headers


@pytest.mark.parametrize(("path", "method"), NOT_COVERED)
def test_the_routes_without_cors_keep_their_405_and_no_headers(
    raw: httpx.Client, path: str, method: str
) -> None:
    assert_405(preflight(raw, path, method))
    answer = raw.request("GET", path, headers={"origin": PAGE})
    assert cors_headers(answer) == {}, path


def test_an_options_that_is_no_allowed_preflight_stays_the_405(raw: httpx.Client) -> None:
    path = "/v1/chat/completions"
    assert_405(raw.options(path))  # no Origin
    bare = raw.options(path, headers={"origin": PAGE})  # no Access-Control-Request-Method
    assert bare.status_code == 405 and bare.headers["allow"] == "POST"
    assert bare.json()["error"]["code"] == "method_not_allowed"
    wrong = preflight(raw, path, "DELETE")  # a method the route does not take
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    for refused in (bare, wrong):  # as docs/http-api.md says: an answer, never a preflight's
        assert_readable(refused)
        assert set(cors_headers(refused)) == {
            "access-control-allow-origin",
            "access-control-expose-headers",
        }


def test_headers_outside_the_list_are_not_echoed(raw: httpx.Client) -> None:
    asked = "Authorization, X-Evil, X-Stainless-Retry-Count"
    headers = {"origin": PAGE, "access-control-request-method": "POST",
               "access-control-request-headers": asked}  # fmt: skip
    response = raw.options("/v1/chat/completions", headers=headers)
    assert response.status_code == 204
    assert response.headers["access-control-allow-headers"] == (
        "authorization, x-stainless-retry-count"
    )
    asked_none = raw.options(
        "/v1/messages", headers={"origin": PAGE, "access-control-request-method": "POST"}
    )
    allowed = asked_none.headers["access-control-allow-headers"].split(", ")
    assert {"x-api-key", "anthropic-version", "anthropic-beta", "openai-beta"} <= set(allowed)


def test_answers_and_streams_carry_cors_for_a_browser(box: Box, raw: httpx.Client) -> None:
    _, key = box.new_user("5")
    auth = {"authorization": f"Bearer {key}", "origin": PAGE}
    answer = raw.post("/v1/chat/completions", json=HELLO, headers=auth)
    assert answer.status_code == 200
    assert_readable(answer)
    assert "x-codelace-cost-usd" in answer.headers
    streamed = HELLO | {"stream": True}
    with raw.stream("POST", "/v1/chat/completions", json=streamed, headers=auth) as stream:
        assert stream.status_code == 200
        assert_readable(stream)
        assert b"data: [DONE]" in stream.read()
    for path in ("/v1/models", "/api/v1/auth/me", "/api/v1/customer/balance",
                 "/api/v1/public/pricing"):  # fmt: skip
        got = raw.get(path, headers=auth)
        assert got.status_code == 200, path
        assert_readable(got)


def test_no_origin_no_cors_headers(box: Box, raw: httpx.Client) -> None:
    _, key = box.new_user("5")
    auth = {"authorization": f"Bearer {key}"}
    answer = raw.post("/v1/chat/completions", json=HELLO, headers=auth)
    assert answer.status_code == 200
    assert cors_headers(answer) == {} and "vary" not in answer.headers
    assert cors_headers(raw.post("/v1/chat/completions", json=HELLO)) == {}  # a 401


def test_every_kind_of_error_is_readable(box: Box, raw: httpx.Client, fake: FakeOpenAI) -> None:
    email, key = box.new_user("5")
    auth = {"authorization": f"Bearer {key}", "origin": PAGE}
    _, broke = box.new_user("0")
    cases = [
        (401, raw.post("/v1/chat/completions", json=HELLO, headers={"origin": PAGE})),
        (401, raw.post("/v1/messages", json={}, headers={"origin": PAGE})),
        (402, raw.post("/v1/chat/completions", json=HELLO,
                       headers={"authorization": f"Bearer {broke}", "origin": PAGE})),
        (400, raw.post("/v1/chat/completions", content=b"{nope", headers=auth)),
        (404, raw.post("/v1/chat/completions", json=HELLO | {"model": "no/such"}, headers=auth)),
        (404, raw.get("/v1/no-such-route", headers=auth)),
        (405, raw.get("/v1/chat/completions", headers=auth)),
        (413, raw.post("/v1/chat/completions", content=b"x" * 11_000_000, headers=auth)),
    ]  # fmt: skip
    broken = Reply(status=500, error={"message": "upstream broke", "type": "server_error"})
    fake.push(*[broken] * 5)  # and its retries
    cases.append((502, raw.post("/v1/chat/completions", json=HELLO, headers=auth)))
    fake.reset()
    box.cli("users", "limits", email, "--rpm", "1")
    raw.post("/v1/chat/completions", json=HELLO, headers=auth)
    limited = raw.post("/v1/chat/completions", json=HELLO, headers=auth)
    cases.append((429, limited))
    for status, response in cases:
        assert response.status_code == status, (status, response.text)
        assert "error" in response.json()
        assert_readable(response)
    assert limited.headers["retry-after"]
    assert cases[1][1].json()["type"] == "error"  # still Anthropic's shape on /v1/messages


def test_an_origin_list_echoes_the_origin_and_refuses_others(listed: Box) -> None:
    _, key = listed.new_user("5")
    with httpx.Client(base_url=listed.url, timeout=30, verify=TLS) as client:
        allowed = preflight(client, "/v1/chat/completions", "POST")
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == PAGE
        assert allowed.headers["vary"].startswith("Origin")
        assert_405(preflight(client, "/v1/chat/completions", "POST", origin=OTHER))
        auth = {"authorization": f"Bearer {key}"}
        answer = client.post("/v1/chat/completions", json=HELLO, headers=auth | {"origin": PAGE})
        assert_readable(answer, allow_origin=PAGE)
        assert answer.headers["vary"] == "Origin"
        refused = client.post("/v1/chat/completions", json=HELLO, headers=auth | {"origin": OTHER})
        assert refused.status_code == 200 and cors_headers(refused) == {}


def test_an_empty_list_turns_cors_off(off: Box) -> None:
    _, key = off.new_user("5")
    with httpx.Client(base_url=off.url, timeout=30, verify=TLS) as client:
        assert_405(preflight(client, "/v1/chat/completions", "POST"))
        auth = {"authorization": f"Bearer {key}", "origin": PAGE}
        answer = client.post("/v1/chat/completions", json=HELLO, headers=auth)
        assert answer.status_code == 200 and cors_headers(answer) == {}
        assert json.loads(answer.content)["choices"]
