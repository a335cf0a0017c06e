"""The 402 of a key whose cap is spent, or of an account with no credit left, on a real box:
told that nothing is left and what helps (raise the cap, wait for the reset, add credit), not
to lower max_tokens (or, on /v1/messages, to have Claude Code ask for fewer output tokens),
which no request of any size can pass by. A key with some of its cap left, or an account with
some credit, is still told its request's worst case does not fit, and by how much it holds."""

from __future__ import annotations

import httpx
import pytest

from tests.clock import clear_of_midnight
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, Box
from tests.limits.test_key_limits import CAP, FLAT, chat, each, embeddings, messages, new_key

pytestmark = pytest.mark.timeout(120)


def responses(box: Box, key: str) -> httpx.Response:
    body = {"model": FLAT, "input": "Hi", "max_output_tokens": CAP}
    return box.http(key).post("/v1/responses", json=body)


def told(answer: httpx.Response) -> str:
    """The message of a 402, in either dialect."""
    assert answer.status_code == 402, answer.text
    return str(answer.json()["error"]["message"])


def test_a_key_whose_cap_is_spent_is_told_so_not_to_lower_max_tokens(
    box: Box, fake: FakeOpenAI
) -> None:
    clear_of_midnight()  # the key's one request and its refusals are of one day
    email, _ = box.new_user("50")
    key, _ = new_key(box, email, limit_usd=f"{each() / 1e9:.9f}", limit_reset="daily")
    fake.default = Reply(completion_tokens_from_cap=True)
    assert chat(box, key).status_code == 200  # the whole cap spent
    for answer in (chat(box, key), messages(box, key), responses(box, key)):
        message = told(answer)
        assert "max_tokens" not in message and "CLAUDE_CODE" not in message, message
        assert "nothing is left of this API key's spend limit" in message, message
        assert "raise limit_usd or wait for the daily reset (00:00 UTC)" in message, message


def test_a_key_with_some_of_its_cap_left_is_still_told_to_lower_max_tokens(
    box: Box, fake: FakeOpenAI
) -> None:
    email, _ = box.new_user("50")
    key, _ = new_key(box, email, limit_usd=f"{each() // 2 / 1e9:.9f}")
    message = told(chat(box, key))
    assert "does not fit what is left" in message and "lower max_tokens" in message, message
    assert "this request holds $0.001" in message, message


def test_an_account_without_credit_is_told_to_add_credit_not_to_lower_max_tokens(
    box: Box, fake: FakeOpenAI
) -> None:
    _, key = box.new_user("0")
    for answer in (chat(box, key), messages(box, key), responses(box, key)):
        message = told(answer)
        assert "max_tokens" not in message and "CLAUDE_CODE" not in message, message
        assert "no credit left" in message and "add credit" in message, message


def compact(box: Box, key: str) -> httpx.Response:
    body = {"model": FLAT, "input": "Hi", "max_output_tokens": CAP}
    return box.http(key).post("/v1/responses/compact", json=body)


def test_a_402_tells_the_sdks_not_to_retry_it_on_every_route(box: Box, fake: FakeOpenAI) -> None:
    """No retry of the same request passes a 402 (the anthropic and openai SDKs obey
    `x-should-retry: false`; OpenAI's routes said nothing, Anthropic's did)."""
    _, key = box.new_user("0")
    routes = (chat, messages, responses, compact, each_embedding)
    for route in routes:
        answer = route(box, key)
        told(answer)
        assert answer.headers.get("x-should-retry") == "false", (route.__name__, answer.headers)


def each_embedding(box: Box, key: str) -> httpx.Response:
    return embeddings(box, key, MODEL)  # priced on its input (FLAT's embeddings are free)


def test_a_responses_call_without_an_output_cap_is_told_what_codex_can_do(
    box: Box, fake: FakeOpenAI
) -> None:
    """Codex sends no max_output_tokens (and its config.toml has no setting that sends one),
    so "lower max_output_tokens" alone named nothing its user can set: the model's cap (4,096
    tokens unset, $0.04 here) is held, and another model is what Codex can choose."""
    _, key = box.new_user("0.01")
    body = {"model": FLAT, "input": "Hi"}
    message = told(box.http(key).post("/v1/responses", json=body))
    assert "lower max_output_tokens" in message, message
    assert "up to 4096 output tokens; it sent no max_output_tokens" in message, message
    assert "the model's cap is held: Codex sends none" in message, message
    assert "(codex -m)" in message, message
    sent = {**body, "max_output_tokens": 4096}  # a client that sets it: the field is the way
    message = told(box.http(key).post("/v1/responses", json=sent))
    assert "lower max_output_tokens" in message and "Codex" not in message, message
