"""api/errors.py and api/common.py with real Sanic request objects: every error is the
OpenAI envelope with a fitting status; unexpected errors show nothing of their internals."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from sanic import Request, Sanic
from sanic.compat import Header
from sanic.exceptions import (
    BadRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    ServerError,
    ServiceUnavailable,
)

from codelace_box import errors
from codelace_box.api.common import bearer_token, json_body
from codelace_box.api.errors import render_error

APP = Sanic("foundation_unit_errors")


def request(body: bytes = b"", headers: dict[str, str] | None = None) -> Request:
    made = Request(b"/v1/thing?x=1", Header(headers or {}), "1.1", "POST", None, APP)  # type: ignore[arg-type]
    made.body = body
    return made


def error_of(response: Any) -> dict[str, Any]:
    body = json.loads(response.body)
    assert set(body) == {"error"}
    return dict(body["error"])


@pytest.mark.parametrize(
    ("exc", "status", "error_type", "code"),
    [
        (errors.InvalidRequest("bad"), 400, "invalid_request_error", "invalid_request"),
        (errors.AuthenticationFailed("who"), 401, "authentication_error", "invalid_api_key"),
        (errors.InsufficientCredits("poor"), 402, "invalid_request_error", "insufficient_credits"),
        (errors.PermissionDenied("no", code="account_disabled"), 403, "permission_error",
         "account_disabled"),
        (errors.NotFound("gone", code="model_not_found"), 404, "not_found_error",
         "model_not_found"),
        (errors.Conflict("twice"), 409, "invalid_request_error", "conflict"),
        (errors.PayloadTooLarge("big"), 413, "invalid_request_error", "payload_too_large"),
        (errors.UpstreamError("upstream"), 502, "api_error", "upstream_error"),
        (errors.ServiceUnavailable("off"), 503, "api_error", "service_unavailable"),
        (errors.UpstreamTimeout("slow"), 504, "api_error", "upstream_timeout"),
    ],
)  # fmt: skip
def test_our_errors_render_with_their_status_type_and_code(
    exc: errors.CodelaceError, status: int, error_type: str, code: str
) -> None:
    response = render_error(request(), exc)
    assert response.status == status
    assert response.content_type == "application/json"
    assert error_of(response) == {"message": exc.message, "type": error_type, "code": code}


def test_rate_limits_carry_retry_after_and_params_are_kept() -> None:
    response = render_error(request(), errors.RateLimited("slow down", retry_after_sec=0.2))  # type: ignore[arg-type]
    assert response.status == 429 and response.headers["retry-after"] == "1"
    assert error_of(response)["type"] == "rate_limit_error"
    with_param = render_error(request(), errors.InvalidRequest("no model", param="model"))
    assert error_of(with_param)["param"] == "model"


@pytest.mark.parametrize(
    ("exc", "status", "code", "message"),
    [
        (BadRequest("Bad Request"), 400, "invalid_request", "Bad Request"),
        (NotFound("x"), 404, "not_found", "no route for POST /v1/thing"),
        (RequestTimeout("Request Timeout"), 408, "request_timeout", "Request Timeout"),
        (PayloadTooLarge("x"), 413, "payload_too_large", "request body too large: this box takes"
         " at most 100,000,000 bytes = 95.4 MiB (server.max_body_bytes)"),  # Sanic's default
        (ServiceUnavailable("Response Timeout"), 503, "service_unavailable",
         "the server took too long to answer; retry shortly"),
    ],
)  # fmt: skip
def test_sanic_errors_become_envelopes(
    exc: Exception, status: int, code: str, message: str
) -> None:
    response = render_error(request(), exc)
    assert response.status == status
    error = error_of(response)
    assert (error["code"], error["message"]) == (code, message)


def test_405_names_the_allowed_methods() -> None:
    exc = MethodNotAllowed("no", method="DELETE", allowed_methods={"POST", "GET"})
    response = render_error(request(), exc)
    assert response.status == 405 and response.headers["allow"] == "GET, POST"
    assert error_of(response)["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "exc", [KeyError("sk-secret-key"), ServerError("db at /srv/x failed"), RuntimeError("x")]
)
def test_unexpected_errors_hide_their_internals_and_are_logged(
    exc: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    made = request()
    made.ctx.request_id = "req_0123456789abcdef01234567"
    with caplog.at_level(logging.ERROR, logger="codelace_box.api"):
        response = render_error(made, exc)
    assert response.status == 500
    assert error_of(response) == {
        "message": "internal error (request req_0123456789abcdef01234567)",
        "type": "server_error",
        "code": "internal_error",
    }
    for leak in ("sk-secret", "/srv", "KeyError", "RuntimeError"):
        assert leak not in response.body.decode()
    assert "unhandled error in request req_0123456789abcdef01234567" in caplog.text


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "must be a JSON object"),
        (b"[1]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"{bad", "malformed JSON body"),
        (b"\xff", "malformed JSON body"),
    ],
)
def test_json_body_refuses_what_is_not_a_json_object(body: bytes, fragment: str) -> None:
    with pytest.raises(errors.InvalidRequest, match=fragment) as caught:
        json_body(request(body))
    assert caught.value.code == "invalid_json"


def test_json_body_returns_the_object() -> None:
    assert json_body(request(b'{"email": "a@b.c", "n": [1]}')) == {"email": "a@b.c", "n": [1]}


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer cl_abc", "cl_abc"),
        ("bearer   cl_abc  ", "cl_abc"),
        ("Basic Zm9vOmJhcg==", None),
        ("Bearer ", None),
        ("", None),
    ],
)
def test_bearer_token(header: str, token: str | None) -> None:
    headers = {"authorization": header} if header else {}
    assert bearer_token(request(headers=headers)) == token
