"""OpenAI's 429 `insufficient_quota` is the operator's account out of money, not a rate limit
(and its 429 `billing_not_active`, an account whose billing is not set up or was cancelled):
a 503 that says so (provider_out_of_credit), as a 402 from any provider is, on every route;
not a 429 that Claude Code, Codex and the SDKs retry and wait on again and again."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import OPENAI_ALIAS, OPENAI_MODEL, MessagesBox
from tests.support import TLS

QUOTA = {"message": "You exceeded your current quota, please check your plan and billing "
         "details. For more information on this error, read the docs: "
         "https://platform.openai.com/docs/guides/error-codes/api-errors.",
         "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}  # fmt: skip
RATE = {"message": "Rate limit reached for gpt-5.4-mini on tokens per min (TPM): Limit 200000, "
        "Used 199000, Requested 2000.", "type": "tokens", "param": None,
        "code": "rate_limit_exceeded"}  # fmt: skip
INACTIVE = {"message": "Your account is not active, please check your billing details on our "
            "website.", "type": "billing_not_active", "param": None,
            "code": "billing_not_active"}  # fmt: skip
PER_MINUTE = {
    "code": 429,
    "status": "RESOURCE_EXHAUSTED",
    "message": "You exceeded your current quota, please check your plan and billing "
    "details. For more information on this error, head to: "
    "https://ai.google.dev/gemini-api/docs/rate-limits.",
    "details": [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"quotaId": "GenerateContentInputTokensPerModelPerMinute-FreeTier"}],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "26.2s"},
    ],
}
ASK = [{"role": "user", "content": "x"}]


def _both_routes(box: MessagesBox, key: str, error: dict[str, object]) -> list[httpx.Response]:
    answers = []
    for path, model in (("/v1/messages", OPENAI_ALIAS), ("/v1/chat/completions", OPENAI_MODEL)):
        box.openai_fake.reset()
        box.openai_fake.push(*[Reply(status=429, error=error)] * 3)
        answers.append(httpx.post(f"{box.server.base_url}{path}", json={
            "model": model, "max_tokens": 20, "messages": ASK},
            headers={"authorization": f"Bearer {key}"}, timeout=30, verify=TLS))  # fmt: skip
    return answers


@pytest.mark.parametrize("error", [QUOTA, INACTIVE], ids=["quota", "inactive"])
def test_an_exhausted_openai_quota_is_a_503_that_says_so(
    fresh: MessagesBox, error: dict[str, object]
) -> None:
    """billing_not_active was a 429 with Retry-After: 1, which clients retried as a rate limit
    that passes."""
    _, key = fresh.new_key()
    messages, chat = _both_routes(fresh, key, error)
    assert (messages.status_code, chat.status_code) == (503, 503), (messages.text, chat.text)
    assert "retry-after" not in messages.headers
    assert "out of credit" in messages.json()["error"]["message"]
    assert chat.json()["error"]["code"] == "provider_out_of_credit"


def test_a_real_rate_limit_stays_a_429_with_retry_after(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    messages, chat = _both_routes(fresh, key, RATE)
    assert (messages.status_code, chat.status_code) == (429, 429)
    assert messages.json()["error"]["type"] == "rate_limit_error"
    assert messages.headers["retry-after"] and chat.headers["retry-after"]


def test_a_quota_google_says_passes_is_a_429_with_its_wait(fresh: MessagesBox) -> None:
    """Gemini words its per-minute limits as an exceeded quota too, and says when to retry in
    the error's details (RetryInfo): it was a final 503 "out of credit" where waiting 27 s
    does."""
    _, key = fresh.new_key()
    messages, chat = _both_routes(fresh, key, PER_MINUTE)
    assert (messages.status_code, chat.status_code) == (429, 429), (messages.text, chat.text)
    assert messages.headers["retry-after"] == chat.headers["retry-after"] == "27"
    assert chat.json()["error"]["code"] == "rate_limited"
