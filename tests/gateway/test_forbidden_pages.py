"""403s that refuse neither the operator's key nor the request's content: a firewall's or proxy's
HTML page (Cloudflare's "Access denied" or "Attention Required", a WAF) and OpenAI's
`unsupported_country_region_territory`. The provider is unavailable (503): the key stays in
rotation and is never probed, the user is not told a key was refused, and no HTML is relayed."""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, Box, BoxFactory
from tests.support import TLS, sdk_http

pytestmark = pytest.mark.timeout(60)
HELLO = [{"role": "user", "content": "Say hello"}]
KEYS = ("sk-walled-key-0001", "sk-walled-key-0002")
PAGES = {
    "access-denied": "Access denied | api.example.com used Cloudflare to restrict access",
    "attention": "Attention Required! | Cloudflare",
}
COUNTRY = {
    "code": "unsupported_country_region_territory",
    "message": "Country, region, or territory not supported",
    "param": None,
    "type": "request_forbidden",
}


def page(title: str) -> Reply:
    """A 403 HTML page, as Cloudflare sends it in front of a provider."""
    html = (
        f"<!DOCTYPE html><html><head><title>{title}</title></head><body>"
        "<h1>Sorry, you have been blocked</h1><p>Ray ID: 8f1e2d3c4b5a6978</p></body></html>"
    )
    return Reply(status=403, raw=[html.encode()], content_type="text/html; charset=UTF-8")


def country() -> Reply:
    return Reply(status=403, error=dict(COUNTRY))


@pytest.fixture
def box(box_factory: BoxFactory) -> Box:
    return box_factory(keys=KEYS)


def failing(box: Box) -> list[bool]:
    """Which of the provider's keys are out of rotation."""
    listed = json.loads(box.cli("providers", "list", "--json"))
    return [bool(k["failing"]) for k in listed[0]["keys"]]


@pytest.mark.parametrize("title", list(PAGES.values()), ids=list(PAGES))
def test_a_firewall_page_on_one_key_tries_the_next_and_keeps_both(
    box: Box, fake: FakeOpenAI, title: str
) -> None:
    _, key = box.new_user("1")
    fake.push(page(title))
    done = box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert done.choices[0].message.content == "Hello from the fake upstream."
    assert len({r.api_key for r in fake.requests}) == 2
    assert fake.probes == [] and failing(box) == [False, False]


@pytest.mark.parametrize("stream", [False, True], ids=["answer", "stream"])
@pytest.mark.parametrize("title", list(PAGES.values()), ids=list(PAGES))
def test_a_firewall_page_on_every_key_is_the_provider_unavailable(
    box: Box, fake: FakeOpenAI, title: str, stream: bool
) -> None:
    email, key = box.new_user("1")
    fake.default = page(title)
    body = {"model": MODEL, "messages": HELLO, "stream": stream}
    for _ in range(2):  # a second refusal would park a key its probe keeps
        with box.http(key) as http:
            answer = http.post("/v1/chat/completions", json=body)
        assert answer.status_code == 503, answer.text
        error = answer.json()["error"]
        assert error["code"] == "provider_unavailable" and error["type"] == "api_error"
        assert "<" not in error["message"] and "key" not in error["message"], error
        assert "HTTP 403" in error["message"] and "fake" in error["message"]
    assert len({r.api_key for r in fake.requests}) == 2
    assert fake.probes == [] and failing(box) == [False, False]
    assert box.balance(email)[1] == 0


def test_a_firewall_page_on_the_messages_route_is_a_503_in_anthropics_shape(
    box: Box, fake: FakeOpenAI
) -> None:
    _, key = box.new_user("1")
    fake.default = page(PAGES["access-denied"])
    body = {"model": MODEL, "max_tokens": 50, "messages": HELLO}
    with httpx.Client(base_url=box.url, headers={"x-api-key": key}, timeout=30, verify=TLS) as http:
        answer = http.post("/v1/messages", json=body)
    assert answer.status_code == 503, answer.text
    assert answer.json()["type"] == "error" and "<" not in answer.text
    assert "refused the operator's key" not in answer.text
    assert fake.probes == [] and failing(box) == [False, False]


def claude(box: Box, key: str, retries: int) -> anthropic.Anthropic:
    """The real Anthropic SDK against the box, retrying as it decides (its first wait is
    half a second at most)."""
    return anthropic.Anthropic(base_url=box.url, api_key=key, max_retries=retries,
                               timeout=30, http_client=sdk_http(anthropic))  # fmt: skip


def test_a_firewall_page_on_the_messages_route_lets_the_sdk_retry(
    box: Box, fake: FakeOpenAI
) -> None:
    """A firewall's page is the provider unavailable for now (the box itself tries the next
    key, as for a 5xx), not a refusal no retry changes: its 503 does not say
    `x-should-retry: false`, so Anthropic's SDK (and Claude Code) retry it as the 5xx it is;
    it said so (its code is that of a disabled provider), and the SDK gave up at once."""
    _, key = box.new_user("1")
    fake.default = page(PAGES["attention"])
    body = {"model": MODEL, "max_tokens": 50, "messages": HELLO}
    with httpx.Client(base_url=box.url, headers={"x-api-key": key}, timeout=30, verify=TLS) as http:
        answer = http.post("/v1/messages", json=body)
    assert answer.status_code == 503, answer.text
    assert "x-should-retry" not in answer.headers, answer.headers
    assert answer.json()["error"]["type"] == "api_error", answer.text  # not an overload
    once = len(fake.requests)
    with pytest.raises(anthropic.InternalServerError) as caught:
        claude(box, key, retries=1).messages.create(model=MODEL, max_tokens=50, messages=HELLO)
    assert caught.value.status_code == 503
    assert len(fake.requests) == once * 3  # the first call, then the SDK's try and its retry


def test_an_unsupported_country_on_the_messages_route_stays_final(
    box: Box, fake: FakeOpenAI
) -> None:
    """Unlike a firewall's page, a country the provider does not serve is not passing."""
    _, key = box.new_user("1")
    fake.default = country()
    with pytest.raises(anthropic.InternalServerError) as caught:
        claude(box, key, retries=1).messages.create(model=MODEL, max_tokens=50, messages=HELLO)
    assert caught.value.status_code == 503
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert len(fake.requests) == 1


def test_an_unsupported_country_is_the_provider_unavailable_and_keeps_the_key(
    box: Box, fake: FakeOpenAI
) -> None:
    email, key = box.new_user("1")
    fake.push(country())
    with pytest.raises(openai.APIStatusError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert caught.value.status_code == 503
    assert caught.value.code == "provider_unavailable"
    message = caught.value.message
    assert "country, region or territory" in message and "fake" in message
    assert "refused the request" not in message and "key" not in message
    assert len(fake.requests) == 1  # every key is sent from the same place: none would do
    assert fake.probes == [] and failing(box) == [False, False]
    assert box.balance(email)[1] == 0
    done = box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert done.choices[0].message.content == "Hello from the fake upstream."


# OpenAI's 403s of a model the operator's project may not use: the operator's setup, not the
# user's content, and their words name the operator's project (never shown to users)
NO_MODEL = {
    "chat": {
        "message": "Project `proj_Zq81operatorXy` does not have access to model `gpt-x`",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    },
    "embeddings": {
        "message": "You are not allowed to generate embeddings from this model",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    },
}


@pytest.mark.parametrize("route", list(NO_MODEL))
def test_a_model_the_operators_account_may_not_use_is_no_content_refusal(
    box: Box, fake: FakeOpenAI, route: str
) -> None:
    """Not a 400 content_refused quoting the upstream (its project id): a 503 that says the
    provider refused the model to the box's account; no key probed or flagged, nothing billed."""
    email, key = box.new_user("1")
    fake.push(Reply(status=403, error=dict(NO_MODEL[route])))
    with pytest.raises(openai.APIStatusError) as caught:
        if route == "chat":
            box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
        else:
            box.sdk(key).embeddings.create(model=MODEL, input="hello")
    assert caught.value.status_code == 503
    assert caught.value.code == "provider_unavailable"
    message = caught.value.message
    assert "fake" in message and "model" in message and "account" in message, message
    assert "proj_" not in message and "not allowed" not in message, message
    assert len(fake.requests) == 1  # the same account's model: no retry
    assert fake.probes == [] and failing(box) == [False, False]
    assert box.balance(email)[1] == 0
    if route == "chat":  # the operator reads the provider's words in the server log
        box.server.wait_for_log(r"fake refused the model .*proj_Zq81operatorXy")


def test_a_model_the_operators_account_may_not_use_is_final_on_the_messages_route(
    box: Box, fake: FakeOpenAI
) -> None:
    _, key = box.new_user("1")
    fake.default = Reply(status=403, error=dict(NO_MODEL["chat"]))
    with pytest.raises(anthropic.InternalServerError) as caught:
        claude(box, key, retries=1).messages.create(model=MODEL, max_tokens=50, messages=HELLO)
    assert caught.value.status_code == 503
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert "proj_" not in caught.value.response.text
    assert len(fake.requests) == 1


# A refusal of what the user asked that happens to speak of "this model" stays the user's
# content refused (400), not the operator's setup (a 503 that tells Claude Code not to retry)
CONTENT_WORDS = [
    "Your input was flagged: users are not allowed to ask this model about weapons",
    "Request blocked by guardrail: you are not allowed to use this model for that request",
]


@pytest.mark.parametrize("words", CONTENT_WORDS)
def test_a_content_refusal_that_names_this_model_stays_a_content_refusal(
    box: Box, fake: FakeOpenAI, words: str
) -> None:
    _, key = box.new_user("1")
    fake.push(Reply(status=403, error={"message": words, "type": "invalid_request_error"}))
    with pytest.raises(openai.APIStatusError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert (caught.value.status_code, caught.value.code) == (400, "content_refused")
    assert words in caught.value.message


@pytest.mark.parametrize("route", ["chat", "responses", "embeddings"])
def test_a_final_503_on_the_openai_routes_says_not_to_retry(
    box: Box, fake: FakeOpenAI, route: str
) -> None:
    """A country the provider does not serve is final on the OpenAI-shaped routes too: their
    503 carried no `x-should-retry: false`, so the openai SDK retried it twice (three calls
    upstream, each refused the same), as the Messages routes' final 503 no longer is."""
    _, key = box.new_user("1")
    fake.default = country()
    sdk = box.sdk(key).with_options(max_retries=2)
    with pytest.raises(openai.APIStatusError) as caught:
        if route == "chat":
            sdk.chat.completions.create(model=MODEL, messages=HELLO)
        elif route == "responses":
            sdk.responses.create(model=MODEL, input="Say hello")
        else:
            sdk.embeddings.create(model=MODEL, input="hello")
    assert caught.value.status_code == 503
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert len(fake.requests) == 1, [r.path for r in fake.requests]


def test_a_firewall_page_on_the_openai_routes_lets_the_sdk_retry(
    box: Box, fake: FakeOpenAI
) -> None:
    """A firewall's page stays passing there too: no `x-should-retry`, the SDK retries it."""
    _, key = box.new_user("1")
    fake.default = page(PAGES["attention"])
    with pytest.raises(openai.InternalServerError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert "x-should-retry" not in caught.value.response.headers
    once = len(fake.requests)
    with pytest.raises(openai.InternalServerError):
        box.sdk(key).with_options(max_retries=1).chat.completions.create(
            model=MODEL, messages=HELLO
        )
    assert len(fake.requests) == once * 3  # the first call, then the SDK's try and its retry


# Upstreams' 404s of a model they do not have (the catalog's upstream name is the operator's):
# OpenAI's (Groq's), vLLM's (its bare error object), Ollama's (a string), OpenRouter's, Gemini's
MISSING_MODEL = {
    "openai": {"error": {"message": "The model `gpt-x` does not exist or you do not have "
               "access to it.", "type": "invalid_request_error", "param": None,
               "code": "model_not_found"}},
    "vllm": {"object": "error", "message": "The model `op/llama-x` does not exist.",
             "type": "NotFoundError", "param": None, "code": 404},
    "ollama": {"error": 'model "llama-x" not found, try pulling it first'},
    "ollama-openai": {"error": {"message": "model 'llama-x' not found", "type": "api_error",
                      "param": None, "code": None}},
    "openrouter": {"error": {"message": "No endpoints found for op/llama-x:free.", "code": 404}},
    "gemini": [{"error": {"code": 404, "message": "models/gemini-x is not found for API version "
                "v1main, or is not supported for generateContent.", "status": "NOT_FOUND"}}],
}  # fmt: skip
# 404s that say nothing of the model being missing stay the upstream's answer
OTHER_404 = {
    "openrouter-tools": {"error": {"message": "No endpoints found that support tool use. To "
                         "learn more about provider routing, visit: "
                         "https://openrouter.ai/docs/provider-routing", "code": 404}},
    "plain": {"error": {"message": "no such model upstream", "type": "invalid_request_error"}},
}  # fmt: skip


def raw_json(status: int, body: object) -> Reply:
    return Reply(status=status, raw=[json.dumps(body).encode()], content_type="application/json")


@pytest.mark.parametrize("upstream", list(MISSING_MODEL))
def test_a_model_the_upstream_does_not_have_is_the_provider_unavailable(
    box: Box, fake: FakeOpenAI, upstream: str
) -> None:
    """It was relayed as a 404 naming the operator's upstream model, as if the user's model did
    not exist; no other key has it either, and no key is at fault."""
    email, key = box.new_user("1")
    fake.push(raw_json(404, MISSING_MODEL[upstream]))
    with pytest.raises(openai.APIStatusError) as caught:
        box.sdk(key).with_options(max_retries=2).chat.completions.create(
            model=MODEL, messages=HELLO
        )
    assert caught.value.status_code == 503
    assert caught.value.code == "provider_unavailable"
    message = caught.value.message
    assert "does not serve this model" in message and "fake" in message, message
    assert "-x" not in message and "not found" not in message, message
    assert len(fake.requests) == 1  # no other key tried, and the SDK told not to retry
    assert fake.probes == [] and failing(box) == [False, False]
    assert box.balance(email)[1] == 0


@pytest.mark.parametrize("words", list(OTHER_404))
def test_a_404_not_about_the_model_is_still_relayed(box: Box, fake: FakeOpenAI, words: str) -> None:
    _, key = box.new_user("1")
    fake.push(raw_json(404, OTHER_404[words]))
    with pytest.raises(openai.NotFoundError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert OTHER_404[words]["error"]["message"] in caught.value.message
