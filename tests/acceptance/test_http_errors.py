"""docs/http-api.md "Conventions", from the outside: the error envelope, its statuses and
x-request-id on every route and method, HEAD on GET routes, and the upstream failures
(429/502/503/504)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import MODEL, Box, assert_envelope
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.support import ServerProcess, base_sections, write_config

pytestmark = pytest.mark.timeout(60)
HI = [{"role": "user", "content": "hi"}]
JSON_POSTS = [
    "/v1/chat/completions",
    "/api/v1/auth/otp/request",
    "/api/v1/auth/otp/verify",
    "/api/v1/auth/key",
    "/api/v1/stripe/checkout",
    "/api/v1/stripe/setup",  # takes no field, but a body sent must be JSON as everywhere
]
AUTHENTICATED = [
    ("POST", "/v1/chat/completions"),
    ("GET", "/api/v1/auth/me"),
    ("PATCH", "/api/v1/auth/me"),
    ("GET", "/api/v1/auth/key"),
    ("POST", "/api/v1/auth/key"),
    ("DELETE", "/api/v1/auth/key/1"),
    ("GET", "/api/v1/customer/balance"),
    ("GET", "/api/v1/customer/usage"),
    ("GET", "/api/v1/customer/payment"),
    ("POST", "/api/v1/stripe/setup"),
    ("POST", "/api/v1/stripe/checkout"),
]
GET_ROUTES = [
    "/healthz",
    "/v1/models",
    f"/v1/models/{MODEL}",
    "/api/v1/public/pricing",
    "/api/v1/auth/me",
    "/api/v1/auth/key",
    "/api/v1/customer/balance",
    "/api/v1/customer/usage",
    "/api/v1/customer/payment",
]


def test_an_unknown_path_is_a_404_envelope_for_every_method(box: Box) -> None:
    with box.http() as http:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            assert_envelope(http.request(method, "/v1/nothing-here"), 404, "not_found")
        head = http.head("/v1/nothing-here")
        assert head.status_code == 404 and head.headers.get("x-request-id")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "OPTIONS"])
def test_a_wrong_method_is_a_405_envelope_naming_what_is_allowed(box: Box, method: str) -> None:
    with box.http() as http:
        response = http.request(method, "/v1/chat/completions")
    assert_envelope(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]


ALLOW_PATHS = [
    "/v1/chat/completions",
    "/v1/models",
    "/api/v1/auth/me",
    "/api/v1/auth/key",
    "/api/v1/auth/key/00000000-0000-4000-8000-000000000000",
    "/healthz",
]


@pytest.mark.parametrize("path", ALLOW_PATHS)
def test_allow_is_one_list_whatever_the_method_and_names_only_methods_taken(
    box: Box, path: str
) -> None:
    """A client that reads `Allow` off a 405 and tries what it names is never met by another
    405; and the list does not depend on which method was refused (OPTIONS is a CORS
    preflight only, its plain form a 405 itself)."""
    allows = set()
    with box.http(box.shared_key) as http:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            response = http.request(method, path)
            if response.status_code == 405:
                allows.add(response.headers["allow"])
        assert len(allows) == 1, allows
        for method in allows.pop().split(", "):
            taken = http.request(method, path, json={})
            assert taken.status_code != 405, (method, taken.text)


def test_head_on_every_get_route_answers_like_get_without_a_body(box: Box) -> None:
    _, key = box.new_user()
    with box.http(key) as http:
        for path in GET_ROUTES:
            got, head = http.get(path), http.head(path)
            assert got.status_code == 200, (path, got.text)
            assert head.status_code == 200, (path, head.status_code)
            assert head.content == b"" and head.headers.get("x-request-id")
            assert head.headers["content-type"] == got.headers["content-type"]


@pytest.mark.parametrize("path", JSON_POSTS)
@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'"text"',
        b"\xff\xfe",
        b'{"temperature": NaN}',
        b'{"x": -Infinity}',
        b'{"x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",  # too deep for the parser
    ],
    ids=["broken", "array", "string", "not-utf8", "nan", "infinity", "deep"],
)
def test_malformed_or_non_object_json_is_a_400_envelope(box: Box, path: str, body: bytes) -> None:
    headers = {"content-type": "application/json"}
    with box.http(box.shared_key) as http:
        response = http.post(path, content=body, headers=headers)
    assert_envelope(response, 400)
    assert response.json()["error"]["type"] == "invalid_request_error"


MULTIPART = b'--xyz\r\nContent-Disposition: form-data; name="model"\r\n\r\nfake\r\n--xyz--\r\n'


@pytest.mark.parametrize("path", [*JSON_POSTS, "/v1/responses", "/v1/embeddings"])
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"model=fake%2Fgpt-test&email=a%40acc.test"),
        ("multipart/form-data; boundary=xyz", MULTIPART),
        ("text/plain", b"hello"),
        ("application/xml", b"<model>fake/gpt-test</model>"),
    ],
    ids=["form", "multipart", "text", "xml"],
)
def test_a_body_that_is_not_json_is_a_400_envelope_whatever_its_content_type(
    box: Box, path: str, content_type: str, body: bytes
) -> None:
    with box.http(box.shared_key) as http:
        response = http.post(path, content=body, headers={"content-type": content_type})
    assert_envelope(response, 400, "invalid_json")


@pytest.mark.parametrize(("method", "path"), AUTHENTICATED)
def test_missing_invalid_and_revoked_keys_are_401_on_every_authenticated_route(
    box: Box, method: str, path: str
) -> None:
    revoked = box.revoked_key
    for headers in (
        {},
        {"authorization": "Bearer cl_" + "x" * 40},
        {"authorization": "Basic dXNlcjpwYXNz"},
        {"authorization": f"Bearer {revoked}"},
    ):
        with box.http() as http:
            response = http.request(method, path, json={}, headers=headers)
        assert_envelope(response, 401, "invalid_api_key")
        assert response.json()["error"]["type"] == "authentication_error"


NOT_TEXT = b"cl_\xe9\xff" + b"x" * 38  # bytes that are no UTF-8: a key of no one


@pytest.mark.parametrize(("method", "path"), AUTHENTICATED)
def test_a_key_that_is_not_text_is_a_401_on_every_authenticated_route(
    box: Box, method: str, path: str
) -> None:
    with box.http() as http:
        response = http.request(
            method, path, json={}, headers={"authorization": b"Bearer " + NOT_TEXT}
        )
    assert_envelope(response, 401, "invalid_api_key")


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_an_x_api_key_that_is_not_text_is_anthropics_401(box: Box, path: str) -> None:
    body = {"model": MODEL, "max_tokens": 5, "messages": HI}
    for headers in ({"x-api-key": NOT_TEXT}, {"authorization": b"Bearer " + NOT_TEXT}):
        with box.http() as http:
            response = http.post(path, json=body, headers=headers)
        assert response.status_code == 401, response.text
        assert response.json()["error"]["type"] == "authentication_error"


@pytest.mark.parametrize(("method", "path"), AUTHENTICATED)
def test_a_disabled_account_is_403_on_every_authenticated_route(
    box: Box, method: str, path: str
) -> None:
    with box.http(box.disabled_key) as http:
        response = http.request(method, path, json={"model": MODEL, "messages": HI})
    assert_envelope(response, 403, "account_disabled")
    assert response.json()["error"]["type"] == "permission_error"


def test_a_body_over_max_body_bytes_is_a_413_envelope(box: Box) -> None:
    with box.http(box.shared_key) as http:
        big = b'{"model": "' + b"x" * 250_000 + b'"}'
        response = http.post("/v1/chat/completions", content=big)
    assert_envelope(response, 413, "payload_too_large")
    message = response.json()["error"]["message"]
    # it says the limit and the setting that holds it (the box's is 200,000 bytes)
    assert "body" in message and "200,000 bytes" in message, message
    assert "server.max_body_bytes" in message, message


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_max_body_bytes_on_the_messages_route_is_anthropics_413(
    box: Box, chunked: bool
) -> None:
    big = b'{"model": "' + b"x" * 250_000 + b'"}'
    content = iter([big]) if chunked else big  # a chunked body is refused as it is read
    with box.http() as http:
        response = http.post("/v1/messages", content=content, headers={"x-api-key": box.shared_key})
    assert response.status_code == 413, response.text
    body = response.json()
    assert (body["type"], body["error"]["type"]) == ("error", "request_too_large"), body
    assert "200,000 bytes" in body["error"]["message"], body
    assert "server.max_body_bytes" in body["error"]["message"], body


@pytest.mark.parametrize(("method", "path"), [("POST", "/no/such/route"), ("PUT", "/v1/models")])
@pytest.mark.parametrize("chunked", [False, True])
def test_an_oversized_body_on_a_wrong_route_does_not_break_the_next_request(
    box: Box, method: str, path: str, chunked: bool
) -> None:
    """A 404/405 answered before the body was read: the box drops the connection when it
    finds the rest too large, so it must say `connection: close` rather than keep-alive (or
    the client's next request on the pooled connection meets a reset)."""
    with box.http(box.shared_key) as http:
        body = b"x" * 250_000
        refused = http.request(method, path, content=iter([body]) if chunked else body)
        assert refused.headers["connection"] == "close"
        after = http.get("/healthz")
    assert refused.status_code in (404, 405)
    assert after.status_code == 200


def test_headers_over_the_limit_are_a_413_that_says_headers(box: Box) -> None:
    with box.http() as http:
        response = http.get("/healthz", headers={"x-padding": "a" * 20_000})
    assert_envelope(response, 413, "payload_too_large")
    assert "header" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("model", "status"),
    [
        ("gpt-4", 400),
        ("", 400),
        (42, 400),
        ("fake/", 400),
        ("/gpt-4", 400),
        ("fake/no-such-model", 404),
        ("nobody/gpt-4", 404),
    ],
)
def test_model_format_is_400_and_unknown_model_404(box: Box, model: object, status: int) -> None:
    with box.http(box.shared_key) as http:
        response = http.post("/v1/chat/completions", json={"model": model, "messages": HI})
    assert_envelope(response, status)
    if status == 404:
        assert response.json()["error"]["type"] == "not_found_error"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("messages", "hi"),
        ("messages", []),
        ("temperature", "hot"),
        ("max_tokens", "10"),
        ("max_tokens", 0),
        ("n", 1.5),
        ("stream", "yes"),
        ("stop", 7),
        ("seed", "s"),
        ("tools", {}),
        ("stream_options", {"include_usage": "yes"}),
        ("max_tokens", 10**30),
        ("max_completion_tokens", 2**31),
        ("messages", [{"role": ["user"], "content": "hi"}]),
        ("messages", [{"role": {"x": 1}, "content": "hi"}]),
    ],
)
def test_wrong_types_are_a_400_naming_the_param(box: Box, field: str, value: object) -> None:
    body = {"model": MODEL, "messages": HI, field: value}
    with box.http(box.shared_key) as http:
        response = http.post("/v1/chat/completions", json=body)
    assert_envelope(response, 400)
    assert response.json()["error"].get("param", field).startswith(field)


def test_a_balance_that_cannot_cover_the_request_is_a_402(box: Box, upstream: FakeOpenAI) -> None:
    _, key = box.new_user("0")
    with box.http(key) as http:
        response = http.post("/v1/chat/completions", json={"model": MODEL, "messages": HI})
    assert_envelope(response, 402, "insufficient_credits")
    assert upstream.requests == []


def test_an_upstream_429_is_a_429_with_retry_after(box: Box, upstream: FakeOpenAI) -> None:
    error = {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}
    upstream.push(Reply(status=429, error=error, headers={"retry-after": "7"}))
    with box.http(box.shared_key) as http:
        response = http.post("/v1/chat/completions", json={"model": MODEL, "messages": HI})
    assert_envelope(response, 429)
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"]["type"] == "rate_limit_error"


def test_too_many_code_requests_are_a_429_with_retry_after(box: Box) -> None:
    email = "often@acc.test"
    with box.http() as http:
        answers = [http.post("/api/v1/auth/otp/request", json={"email": email}) for _ in range(6)]
    assert [a.status_code for a in answers[:5]] == [200] * 5
    assert_envelope(answers[5], 429)
    assert int(answers[5].headers["retry-after"]) >= 1


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_5xx_is_a_502_and_costs_nothing(
    box: Box, upstream: FakeOpenAI, stream: bool
) -> None:
    _, key = box.new_user("1")
    upstream.push(Reply(status=500))
    body = {"model": MODEL, "messages": HI, "stream": stream}
    with box.http(key) as http:
        response = http.post("/v1/chat/completions", json=body)
        balance = http.get("/api/v1/customer/balance").json()["credit_balance_usd"]
        [row] = http.get("/api/v1/customer/usage").json()["recent_requests"]
    assert_envelope(response, 502)
    assert response.json()["error"]["type"] == "api_error"
    assert balance == 1 and row["cost_usd"] == 0
    assert row["id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_that_does_not_answer_in_time_is_a_504(
    box: Box, upstream: FakeOpenAI, stream: bool
) -> None:
    upstream.push(Reply(delay_before=3.5))  # read_timeout_sec is 2
    body = {"model": MODEL, "messages": HI, "stream": stream}
    with box.http(box.shared_key) as http:
        response = http.post("/v1/chat/completions", json=body)
    assert_envelope(response, 504)


def test_a_disabled_provider_is_a_503(box: Box) -> None:
    """(Each change waited for: a call sooner may still be routed by the catalog of before,
    a 200 where the suite's tests are spread over workers without their modules' order.)"""
    box.cli("providers", "disable", "spare")
    try:
        box.until_reloaded()
        with box.http(box.shared_key) as http:
            body = {"model": "spare/model", "messages": HI}
            response = http.post("/v1/chat/completions", json=body)
    finally:
        box.cli("providers", "enable", "spare")
        box.until_reloaded()
    assert_envelope(response, 503)


def test_an_upstream_refusal_keeps_its_4xx_status_in_the_envelope(
    box: Box, upstream: FakeOpenAI
) -> None:
    error = {"message": "Invalid 'tools[0].type'", "type": "invalid_request_error"}
    upstream.push(Reply(status=400, error=error))
    with box.http(box.shared_key) as http:
        response = http.post("/v1/chat/completions", json={"model": MODEL, "messages": HI})
    assert_envelope(response, 400)
    assert "tools[0].type" in response.json()["error"]["message"]


def test_an_error_inside_a_stream_is_an_error_event_with_the_envelope(
    box: Box, upstream: FakeOpenAI
) -> None:
    upstream.push(Reply(content="one two three four", error_after=2))
    body = {"model": MODEL, "messages": HI, "stream": True}
    with box.http(box.shared_key) as http:
        response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 200 and response.headers.get("x-request-id")
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    import json

    last = json.loads(events[-1])
    assert set(last) == {"error"}
    assert {"message", "type", "code"} <= set(last["error"])
    assert all(isinstance(last["error"][k], str) for k in ("message", "type", "code"))


def test_the_sdk_raises_the_right_exception_classes(box: Box, upstream: FakeOpenAI) -> None:
    import openai

    client = box.sdk(box.shared_key)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4", messages=HI)  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="fake/none", messages=HI)  # type: ignore[arg-type]
    with pytest.raises(openai.AuthenticationError):
        box.sdk("cl_" + "y" * 40).chat.completions.create(model=MODEL, messages=HI)  # type: ignore[arg-type]
    with pytest.raises(openai.PermissionDeniedError):
        box.sdk(box.disabled_key).chat.completions.create(model=MODEL, messages=HI)  # type: ignore[arg-type]
    upstream.push(Reply(content="a b c d", error_after=1))
    # the stream starts (200), then its error event raises: not any failure of the call
    stream = client.chat.completions.create(model=MODEL, messages=HI, stream=True)  # type: ignore[arg-type]
    with pytest.raises(openai.APIError) as caught:
        for _ in stream:
            pass
    assert not isinstance(caught.value, openai.APIStatusError), caught.value
    assert isinstance(caught.value.body, dict) and caught.value.body["code"], caught.value.body


ODD_VALUES: list[object] = [None, True, -1, 1.5, 10**30, "x", "", [], {}, [None], {"a": 1}]
CHAT_FIELDS = ["model", "messages", "stream", "stream_options", "max_tokens", "n", "temperature",
               "stop", "tools", "tool_choice", "response_format", "seed", "user", "logit_bias",
               "metadata", "max_completion_tokens", "top_p"]  # fmt: skip


def test_no_json_value_in_any_chat_field_makes_a_5xx(box: Box) -> None:
    """Whatever type a client sends, the answer is a success or a 4xx envelope, never a 500."""
    seen = set()
    with box.http(box.shared_key) as http:
        for field in CHAT_FIELDS:
            for value in ODD_VALUES:
                body = {"model": MODEL, "messages": HI, field: value}
                response = http.post("/v1/chat/completions", json=body)
                assert response.status_code < 500, (field, value, response.text)
                if response.status_code >= 400:
                    assert_envelope(response, response.status_code)
                seen.add(response.status_code)
        for value in ODD_VALUES:
            for message in ({"role": value, "content": "hi"}, {"role": "user", "content": value}):
                response = http.post(
                    "/v1/chat/completions", json={"model": MODEL, "messages": [message]}
                )
                assert response.status_code < 500, (message, response.text)
    assert {200, 400} <= seen


def assert_anthropic_error(response: httpx.Response, status: int, error_type: str) -> None:
    """Anthropic's error shape, with the contract's status and a request id."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers.get("x-request-id")
    body = response.json()
    assert set(body) == {"type", "error"} and body["type"] == "error", body
    assert body["error"]["type"] == error_type and body["error"]["message"], body


@pytest.mark.parametrize(
    "path", ["/v1/messages", "/v1/messages?beta=true", "/v1/messages/count_tokens"]
)
def test_the_messages_routes_answer_their_own_refusals_in_anthropics_shape(
    box: Box, path: str
) -> None:
    """Not only the gateway's refusals: a wrong method, a body over the limit, a broken body,
    a missing key and a disabled account on the two Messages routes are Anthropic-shaped."""
    body = {"model": MODEL, "max_tokens": 5, "messages": HI}
    key = {"x-api-key": box.shared_key}
    with box.http() as http:
        wrong = http.get(path, headers=key)
        assert_anthropic_error(wrong, 405, "invalid_request_error")
        assert "POST" in wrong.headers["allow"]
        big = b'{"model": "' + b"x" * 250_000 + b'"}'
        too_big = http.post(path, content=big, headers=key)
        assert_anthropic_error(too_big, 413, "request_too_large")
        broken = http.post(path, content=b"{not json", headers=key)
        assert_anthropic_error(broken, 400, "invalid_request_error")
        assert_anthropic_error(http.post(path, json=body), 401, "authentication_error")
        disabled = http.post(path, json=body, headers={"x-api-key": box.disabled_key})
        assert_anthropic_error(disabled, 403, "permission_error")


def test_the_largest_max_body_bytes_is_said_in_plain_numbers(
    tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    """server.max_body_bytes at its largest (1 GiB): the 413 said '= 1.02e+03 MiB'."""
    sections = base_sections(tmp_path)
    sections["server"]["max_body_bytes"] = 1024**3
    server = start_server(write_config(tmp_path / "c.toml", sections))
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: box\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2147483648\r\n\r\n"
        )
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), answer
    message = json.loads(body)["error"]["message"]
    assert "1,073,741,824 bytes = 1024 MiB (server.max_body_bytes)" in message, message
