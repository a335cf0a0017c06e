"""An upstream's 404 that says the model does not exist (OpenAI's `model_not_found`, Anthropic's
`not_found_error` "model: ...", vLLM's, Ollama's, OpenRouter's words) is the operator's setup:
the catalog's upstream name is wrong, or not the operator's account's to use. The user asked
for a model the catalog has. Every route answers it as a 503 `provider_unavailable` in its own
envelope, the upstream's words (the operator's upstream model) only in the server log, nothing
charged, not asked again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest

from tests.fakes.anthropic_upstream import Reply as AnthropicReply
from tests.fakes.openai_upstream import Reply
from tests.responses.conftest import (
    ANTHROPIC_MODEL,
    EMBEDDING_MODEL,
    NATIVE_MODEL,
    OPENAI_MODEL,
    ResponsesBox,
)

pytestmark = pytest.mark.timeout(60)
HELLO = [{"role": "user", "content": "Say hello"}]
# the operator's upstream model names, as the upstreams word their 404s
OPENAI_404 = {
    "message": "The model `gpt-op-hidden-1` does not exist or you do not have access to it.",
    "type": "invalid_request_error",
    "param": None,
    "code": "model_not_found",
}
ANTHROPIC_404 = AnthropicReply.error(404, "not_found_error", "model: claude-op-hidden-1")
HIDDEN = "op-hidden-1"


def _chat(box: ResponsesBox, key: str) -> Any:
    return box.openai(key).chat.completions.create(model=OPENAI_MODEL, messages=HELLO)


def _embeddings(box: ResponsesBox, key: str) -> Any:
    return box.openai(key).embeddings.create(model=EMBEDDING_MODEL, input="hello")


def _responses(model: str) -> Callable[[ResponsesBox, str], Any]:
    return lambda box, key: box.openai(key).responses.create(model=model, input="Say hello")


def _messages(model: str) -> Callable[[ResponsesBox, str], Any]:
    return lambda box, key: box.client(key).messages.create(
        model=model, max_tokens=50, messages=HELLO
    )


# route: (how the SDK calls it, which fake answers the 404, whether it is a Messages route)
ROUTES: dict[str, tuple[Callable[[ResponsesBox, str], Any], str, bool]] = {
    "chat": (_chat, "openai", False),
    "embeddings": (_embeddings, "openai", False),
    "responses-native": (_responses(NATIVE_MODEL), "openai", False),
    "responses-translated-openai": (_responses(OPENAI_MODEL), "openai", False),
    "responses-translated-anthropic": (_responses(ANTHROPIC_MODEL), "anthropic", False),
    "messages-passthrough": (_messages(ANTHROPIC_MODEL), "anthropic", True),
    "messages-translated": (_messages(OPENAI_MODEL), "openai", True),
}


@pytest.mark.parametrize("route", list(ROUTES))
def test_an_upstreams_missing_model_is_the_provider_unavailable(
    fresh: ResponsesBox, route: str
) -> None:
    """It was relayed as the upstream's 404, its words naming the operator's upstream model: the
    user read that the model they chose from the catalog does not exist."""
    call, upstream, messages_route = ROUTES[route]
    email, key = fresh.new_key()
    before = fresh.balance_nanos(email)
    if upstream == "openai":
        fresh.openai_fake.push(Reply(status=404, error=dict(OPENAI_404)))
    else:
        fresh.fake.script(ANTHROPIC_404)
    failure = anthropic.APIStatusError if messages_route else openai.APIStatusError
    with pytest.raises(failure) as caught:
        call(fresh, key)
    answer = caught.value.response
    assert answer.status_code == 503, answer.text
    assert HIDDEN not in answer.text and "does not exist" not in answer.text, answer.text
    error = answer.json()["error"]
    if messages_route:
        assert answer.json()["type"] == "error" and set(error) == {"type", "message"}, error
    else:
        assert error["code"] == "provider_unavailable", error
    assert error["type"] == "api_error", error
    assert "does not serve this model" in error["message"] and "account" in error["message"]
    assert answer.headers["x-should-retry"] == "false"  # final: the same model, the same 404
    asked = fresh.openai_fake.requests if upstream == "openai" else fresh.fake.requests
    assert len(asked) == 1
    assert fresh.balance_nanos(email) == before  # free, nothing held
    fresh.server.wait_for_log(rf"does not serve the model .*{HIDDEN}")
