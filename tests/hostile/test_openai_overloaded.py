"""An `openai` upstream that says it is overloaded on every try (OpenAI's 503 "The engine is
currently overloaded, please try again later", a `server_is_overloaded` code, Gemini's and
Ollama's 503 words, another server's 529), on every route, through the real SDKs: a free 503
`upstream_overloaded` (on /v1/messages Anthropic's 503 `overloaded_error`, which Claude Code
reads as overloaded), with the upstream's Retry-After, each try on the next key; any other 503
stays the 502 it was (the box: tests/hostile/conftest.py)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from tests.fakes.hostile_upstream import Act, HostileUpstream
from tests.hostile.conftest import RETRIES, HostileBox, assert_free
from tests.support import sdk_http

pytestmark = pytest.mark.timeout(60)


def _openai_error(message: str, code: str | None = None) -> bytes:
    return json.dumps(
        {"error": {"message": message, "type": "server_error", "param": None, "code": code}}
    ).encode()


OVERLOADS = {
    "openai-503": Act(503, [_openai_error("The engine is currently overloaded, please try "
                                          "again later")], headers={"retry-after": "7"}),
    "overloaded-code": Act(503, [_openai_error("Please try again", "server_is_overloaded")],
                           headers={"retry-after-ms": "6500"}),
    "gemini-503": Act(503, [json.dumps([{"error": {"code": 503, "status": "UNAVAILABLE",
                                                   "message": "The model is overloaded. "
                                                   "Please try again later."}}]).encode()]),
    "others-529": Act(529, [_openai_error("Overloaded")], headers={"retry-after": "7"}),
}  # fmt: skip
WAITS = {"openai-503": "7", "overloaded-code": "7", "gemini-503": None, "others-529": "7"}
ROUTES = ("chat", "chat-stream", "messages", "messages-stream", "responses", "responses-native",
          "embeddings")  # fmt: skip


def _call(box: HostileBox, key: str, route: str) -> Any:
    """The route's call through its real SDK (no retries of its own): the error it raised."""
    hello = [{"role": "user", "content": "hi"}]
    sdk = box.sdk(key)
    claude = anthropic.Anthropic(base_url=box.url, api_key=key, max_retries=0, timeout=30,
                                 http_client=sdk_http(anthropic))  # fmt: skip
    errors = (openai.APIStatusError, anthropic.APIStatusError)
    with pytest.raises(errors) as caught:
        if route.startswith("chat"):
            sdk.chat.completions.create(model="ho/m", messages=hello, stream=route != "chat")
        elif route.startswith("messages"):
            claude.messages.create(model="ho/m", max_tokens=100, messages=hello,
                                   stream=route != "messages")  # fmt: skip
        elif route.startswith("responses"):
            sdk.responses.create(model="hr/m" if route.endswith("native") else "ho/m", input="hi")
        else:
            sdk.embeddings.create(model="ho/m", input="hi")
    return caught.value


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("overload", OVERLOADS)
def test_an_openai_upstream_overloaded_on_every_try_is_a_free_503_overloaded(
    box: HostileBox, hostile: HostileUpstream, overload: str, route: str
) -> None:
    """It was a 502 `api_error` without Retry-After (Anthropic's 529 alone was a 503), which
    Claude Code does not take for an overload (no --fallback-model)."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    hostile.default = OVERLOADS[overload]
    error = _call(box, key, route)
    assert error.status_code == 503, error.response.text
    body = error.response.json()
    if route.startswith("messages"):
        assert body["type"] == "error" and body["error"]["type"] == "overloaded_error", body
        assert isinstance(error, anthropic.OverloadedError | anthropic.InternalServerError)
    else:
        assert body["error"]["code"] == "upstream_overloaded", body
    assert error.response.headers.get("retry-after") == WAITS[overload]
    keys = [seen.key[-4:] for seen in hostile.seen]
    assert len(keys) == 1 + RETRIES and keys[0] != keys[1], keys  # the next key first
    assert_free(box, email, start, "upstream_overloaded")
    assert box.open_holds() == 0


@pytest.mark.parametrize("route", ["chat", "messages"])
def test_another_503_stays_a_502_upstream_error(
    box: HostileBox, hostile: HostileUpstream, route: str
) -> None:
    """A 503 that does not say the upstream is overloaded is answered as before."""
    email, key = box.new_user("10")
    start = box.balance_nanos(email)[0]
    hostile.default = Act(503, [_openai_error("Service temporarily unavailable")])
    error = _call(box, key, route)
    assert error.status_code == 502, error.response.text
    assert "retry-after" not in error.response.headers
    assert_free(box, email, start, "upstream_error")
