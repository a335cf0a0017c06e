"""A retry after Claude's refusal, as Claude Code 2.1.332 sends it: the refused answer's
`stop_details.fallback_credit_token` echoed at the top level (beta `fallback-credit-*`), or a
`resumption` of the refused answer (beta `resumption-2026-10-08`). To an `anthropic` provider
the body and betas go as sent (nothing in them bills beyond the token prices: the credit lowers
the retry's cache writes); to an `openai` one both are Anthropic's own and are left out."""

from __future__ import annotations

from tests.messages.conftest import MODEL, NEEDS_SDK, OPENAI_MODEL, MessagesBox
from tests.messages.test_passthrough import post

pytestmark = NEEDS_SDK

BETAS = {"anthropic-beta": "fallback-credit-2026-07-01,resumption-2026-10-08"}
RETRY = {"fallback_credit_token": "fct_opaque", "resumption": {"type": "enabled", "token": "rt"}}


def body(model: str) -> dict[str, object]:
    return {"model": model, "max_tokens": 10,
            "messages": [{"role": "user", "content": "x"}], **RETRY}  # fmt: skip


def test_the_retry_goes_to_anthropic_as_sent(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    answer = post(fresh, key, body(MODEL), **BETAS)
    assert answer.status_code == 200, answer.text
    (sent,) = fresh.fake.requests
    assert {name: sent.body[name] for name in RETRY} == RETRY
    assert sent.headers["anthropic-beta"] == BETAS["anthropic-beta"]


def test_the_retry_to_an_openai_model_is_a_fresh_call(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    sent = fresh.translated(key, body(OPENAI_MODEL))
    assert not set(RETRY) & set(sent)
    assert sent["messages"] == [{"role": "user", "content": "x"}]
