"""An upstream's error that echoes credentials other than the key the call used (another
provider key, a box key, a bearer token, a long hex token): what the client is told, the log and
the request's history mask them by their shape, as they mask the key in use; the model id the
error names stays readable."""

from __future__ import annotations

import json
import random
import string

import pytest

from tests.fakes.hostile_upstream import SSE, Act, HostileUpstream, anthropic_event, sse
from tests.hostile.conftest import KINDS, ROUTES, HostileBox, stream_of

pytestmark = pytest.mark.timeout(60)
_RNG = random.Random("echoed secrets")
_B62 = string.ascii_letters + string.digits


def _made(prefix: str, alphabet: str, length: int) -> str:
    return prefix + "".join(_RNG.choice(alphabet) for _ in range(length))


SECRETS = (
    _made("sk-ant-api03-", _B62 + "-_", 93),
    _made("sk-proj-", _B62 + "-_", 120),
    _made("sk-", _B62, 48),
    _made("cl_", _B62, 40),
    _made("", "0123456789abcdef", 64),
)
BEARER = _made("", string.ascii_lowercase, 36)  # letters only: only `Bearer` tells it is one
MODEL_ID = "Meta-Llama-3.1-405B-Instruct-Turbo"
MESSAGE = (
    f"model {MODEL_ID} is not available for key {SECRETS[0]} (org key {SECRETS[1]}, legacy "
    f"{SECRETS[2]}, box {SECRETS[3]}); request signed with {SECRETS[4]}; sent Bearer {BEARER}"
)


def refusal(kind: str) -> Act:
    error = {"type": "invalid_request_error", "message": MESSAGE}
    body = {"type": "error", "error": error} if kind == "ha" else {"error": error}
    return Act(400, [json.dumps(body).encode()])


def broken_stream(kind: str) -> Act:
    if kind == "ha":
        event = anthropic_event(
            {"type": "error", "error": {"type": "api_error", "message": MESSAGE}}
        )
    else:
        event = sse({"error": {"message": MESSAGE, "type": "server_error"}})
    return Act(200, [*stream_of(kind, end=False)[:2], event], SSE)


def assert_masked(box: HostileBox, email: str, shown: str) -> None:
    """No part of an echoed credential in what the client got, the log or the usage row; the
    model id named in each of them."""
    row = box.last_row(email)
    stored = row["upstream_error"] or ""
    log = box.server.log_text()
    for secret in (*SECRETS, BEARER):
        for where, text in (("client", shown), ("row", stored), ("log", log)):
            assert secret[-14:-4] not in text, (where, secret, text[-2000:])
    assert MODEL_ID in shown and MODEL_ID in stored, (shown, stored)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_credentials_in_an_upstream_refusal_are_masked(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str
) -> None:
    """Only the key in use was masked in what the client was told: another key the upstream
    echoed (an Anthropic key, an OpenAI project key, a box key, a bearer token) reached it."""
    email, key = box.new_user("10")
    hostile.push(refusal(kind))
    answer = box.post(key, route, kind, stream=False)
    assert answer.status_code == 400, answer.text
    assert_masked(box, email, answer.text)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("route", ROUTES)
def test_credentials_in_an_error_event_are_masked(
    box: HostileBox, hostile: HostileUpstream, route: str, kind: str
) -> None:
    email, key = box.new_user("10")
    hostile.push(broken_stream(kind))
    answer = box.post(key, route, kind, stream=True)
    assert answer.status_code == 200, answer.text
    assert_masked(box, email, answer.text)


def _echoing_key_body(kind: str, key: str, stream: bool) -> Act:
    """An upstream (or a proxy before it) naming the key it was sent without its `sk-`."""
    message = f"Incorrect API key provided: {key.removeprefix('sk-')}. See your keys page."
    if not stream:
        return Act(
            401 if kind == "ho" else 400, [json.dumps({"error": {"message": message}}).encode()]
        )
    error = {"type": "error", "error": {"type": "api_error", "message": message}}
    event = anthropic_event(error) if kind == "ha" else sse({"error": error["error"]})
    return Act(200, [*stream_of(kind, end=False)[:2], event], SSE)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_the_keys_body_an_upstream_echoes_is_masked(
    box: HostileBox, hostile: HostileUpstream, kind: str, stream: bool
) -> None:
    """`mask_in` masked the whole key in use and its cut start, not its body after `sk-`
    ("ho-key-0001", under the shape rule): the client, the row and the log got it whole."""
    email, key = box.new_user("10")
    keys = [f"sk-{kind}-key-000{n}" for n in (1, 2)]
    hostile.key_acts |= {secret: _echoing_key_body(kind, secret, stream) for secret in keys}
    answer = box.post(key, "chat", kind, stream=stream)
    stored, log = box.last_row(email)["upstream_error"] or "", box.server.log_text()
    assert "Incorrect API key provided: " in stored, stored
    for secret in keys:
        for where, text in (("client", answer.text), ("row", stored), ("log", log)):
            assert secret.removeprefix("sk-") not in text, (where, text[-2000:])
