"""Hostile request headers, sent on raw sockets (an HTTP client refuses to send most of them):
control bytes in the headers the box forwards upstream, odd Authorization and x-api-key values,
odd Content-Type and Content-Encoding. Each answer is the route's envelope with a request id,
never a 500, and nothing is charged for a refusal."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from tests.fuzz.conftest import CHAT_MODEL, CLAUDE_MODEL, FuzzBox, error_problems, ledger_state

pytestmark = pytest.mark.timeout(60)
HI = [{"role": "user", "content": "hi"}]
INFERENCE = {
    "/v1/chat/completions": {"model": CHAT_MODEL, "messages": HI, "max_tokens": 5},
    "/v1/messages": {"model": CLAUDE_MODEL, "messages": HI, "max_tokens": 5},
    "/v1/messages/count_tokens": {"model": CLAUDE_MODEL, "messages": HI},
    "/v1/responses": {"model": CHAT_MODEL, "input": "hi", "max_output_tokens": 5},
    "/v1/embeddings": {"model": CHAT_MODEL, "input": "hi"},
}


def post(path: str, body: object, *fields: bytes) -> bytes:
    """A raw POST of `body` as JSON with the header lines `fields`."""
    data = json.dumps(body).encode()
    head = [b"POST " + path.encode() + b" HTTP/1.1", b"Host: box", b"Connection: close",
            b"Content-Type: application/json", b"Content-Length: %d" % len(data),
            *fields]  # fmt: skip
    return b"\r\n".join(head) + b"\r\n\r\n" + data


def answer_of(raw: bytes) -> tuple[int, bytes, dict[str, object]]:
    """Status, head and JSON body of a raw answer (its request id checked)."""
    head, _, body = raw.partition(b"\r\n\r\n")
    found = re.match(rb"HTTP/1\.1 (\d{3}) ", head)
    assert found, raw[:300]
    assert re.search(rb"(?im)^x-request-id: req_[0-9a-f]{24}\r?$", head), head
    return int(found.group(1)), head, json.loads(body) if body else {}


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
@pytest.mark.parametrize("name", [b"anthropic-version", b"anthropic-beta"])
@pytest.mark.parametrize("byte", [b"\x01", b"\x1b", b"\x7f"], ids=["soh", "esc", "del"])
def test_a_control_byte_in_a_forwarded_header_is_anthropics_400(
    box: FuzzBox, path: str, name: bytes, byte: bytes
) -> None:
    """The client's anthropic-version and anthropic-beta go upstream as sent; the upstream
    client refuses a value with a control byte (header injection): that was a 500, after the
    request had been admitted. A 400 that names the header, before anything is held."""
    before = ledger_state(box)
    key = b"x-api-key: " + box.key.encode()
    raw = box.raw(post(path, INFERENCE[path], key, name + b": 2023-06-01" + byte))
    status, _, body = answer_of(raw)
    assert status == 400, raw[-300:]
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert name.decode() in body["error"]["message"]  # type: ignore[index]
    assert ledger_state(box) == before


ENCODED_ROUTES = [
    *INFERENCE.items(),
    ("/api/v1/auth/otp/request", {"email": "encoded@fuzz.test"}),
    ("/api/v1/auth/key", {"name": "encoded"}),
    ("/api/v1/stripe/checkout", {"amount_usd": 20}),
    ("/portal/api/signin/code", {"email": "encoded@fuzz.test"}),
]


@pytest.mark.parametrize(("path", "body"), ENCODED_ROUTES, ids=[p for p, _ in ENCODED_ROUTES])
@pytest.mark.parametrize("compress", [True, False], ids=["gzip-body", "plain-body"])
def test_a_content_encoding_the_box_does_not_decode_is_a_415(
    box: FuzzBox, path: str, body: dict[str, object], compress: bool
) -> None:
    """A gzip body was read as JSON as it came: "malformed JSON body: 'utf-8' codec can't
    decode byte 0x8b", a riddle to the client; and a plain body labelled gzip was served as if
    the label were not there. RFC 9110 has a server answer 415 (with Accept-Encoding) to a
    content coding it does not take: the client learns to send the body uncompressed."""
    data = json.dumps(body).encode()
    before = ledger_state(box)
    with box.http(box.key) as http:
        headers = {"content-type": "application/json", "content-encoding": "gzip",
                   "x-api-key": box.key, "origin": box.url}  # fmt: skip
        answer = http.post(path, content=gzip.compress(data) if compress else data, headers=headers)
    assert answer.status_code == 415, answer.text
    assert answer.headers["accept-encoding"] == "identity"
    assert not error_problems(answer, path, box.secrets())
    error = answer.json()["error"]
    assert "Content-Encoding gzip" in error["message"] and "uncompressed" in error["message"]
    assert ledger_state(box) == before


def test_an_identity_content_encoding_is_no_encoding(box: FuzzBox) -> None:
    body = INFERENCE["/v1/chat/completions"]
    with box.http(box.key) as http:
        for coding in ("identity", "IDENTITY", ""):
            headers = {"content-encoding": coding}
            answer = http.post("/v1/chat/completions", json=body, headers=headers)
            assert answer.status_code == 200, (coding, answer.text)


def odd_keys(key: bytes) -> list[bytes]:
    """Authorization and x-api-key values a fuzzer sends: none of them is the key."""
    return [b"", b"Bearer", b"Bearer ", b"Bearer\t" + key, b"Bearer " + key + b" x",
            b"Bearer Bearer " + key, b"Bearer " + "é".encode() * 100, b"Bearer " + b"x" * 7000,
            b"Token " + key, b"Bearer \xff\xfe" + key, b"Bearer " + key + b"\x01",
            b"Bearer " + key[:-1] + "é".encode(), b"Bearer " + key + b"," + key, b"Bearer cl_",
            b"Bearer " + key.upper(), b"Basic " + key]  # fmt: skip


@pytest.mark.parametrize("path", [*INFERENCE, "/api/v1/auth/me", "/api/v1/customer/usage"])
@pytest.mark.parametrize("name", [b"Authorization", b"x-api-key"])
def test_an_odd_key_header_is_a_401_in_the_routes_envelope(
    box: FuzzBox, path: str, name: bytes
) -> None:
    body = INFERENCE.get(path)
    anthropic = path.startswith("/v1/messages")
    for value in odd_keys(box.key.encode()):
        field = name + b": " + value
        if body is None:
            raw = box.raw(b"GET %s HTTP/1.1\r\nHost: box\r\nConnection: close\r\n%s\r\n\r\n"
                          % (path.encode(), field))  # fmt: skip
        else:
            raw = box.raw(post(path, body, field))
        status, _, answer = answer_of(raw)
        assert status in (400, 401), (value[:60], raw[-300:])  # 400: a head Sanic refuses
        if anthropic:
            assert answer["type"] == "error", answer
        else:
            assert set(answer) == {"error"}, answer


@pytest.mark.parametrize("path", [*INFERENCE, "/v1/messages?beta=true"])
def test_a_head_too_large_is_answered_in_the_routes_envelope(box: FuzzBox, path: str) -> None:
    """A head past Sanic's limit is refused before its request is made, and the 413 was
    answered on target `*`: in the OpenAI envelope on the Messages API routes too, whose
    errors have Anthropic's shape (and `x-should-retry: false`, a 413 being final)."""
    body = INFERENCE[path.partition("?")[0]]
    raw = box.raw(post(path, body, b"x-api-key: " + box.key.encode(), b"x-big: " + b"a" * 20000))
    status, head, answer = answer_of(raw)
    assert status == 413, raw[-300:]
    if path.startswith("/v1/messages"):
        error = {"type": "request_too_large", "message": "request headers too large"}
        assert answer == {"type": "error", "error": error}
        assert re.search(rb"(?im)^x-should-retry: false\r?$", head), head
    else:
        assert answer["error"]["code"] == "payload_too_large", answer  # type: ignore[index]
