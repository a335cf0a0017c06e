"""Every failed upstream attempt is counted in codelace_upstream_errors_total, a 429 or 5xx a
retry on the next key hid from the client included (by provider and the code it would have
had), and a call's final failure once only."""

from __future__ import annotations

import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import MODEL, BoxFactory
from tests.observability.test_metrics_and_logs import scrape, total
from tests.support import eventually

pytestmark = pytest.mark.timeout(90)
HELLO = [{"role": "user", "content": "Hello"}]
BROKEN, GOOD = "sk-broken-key-000001", "sk-good-key-00000002"
ERRORS = "codelace_upstream_errors_total"


@pytest.mark.parametrize(("status", "code"), [(429, "rate_limited"), (503, "upstream_error")])
def test_a_failure_a_retry_hid_is_counted_by_provider_and_code(
    box_factory: BoxFactory, fake: FakeOpenAI, status: int, code: str
) -> None:
    box = box_factory(keys=(BROKEN, GOOD), gateway={"max_retries": 1})
    fake.key_status[BROKEN] = status
    _, key = box.new_user("10")
    sdk = box.sdk(key)
    for _ in range(4):  # round robin: some start on the broken key, then go to the good one
        assert sdk.chat.completions.create(model=MODEL, messages=HELLO).choices
    hidden = [r.api_key for r in fake.requests].count(BROKEN)
    assert hidden >= 1, "no call tried the broken key"
    eventually(lambda: total(scrape(box), ERRORS) == hidden, f"{hidden} upstream errors")
    samples = scrape(box)
    assert total(samples, ERRORS, provider="fake", code=code) == hidden
    assert total(samples, "codelace_inference_requests_total", outcome="ok") == 4


def test_each_failed_attempt_of_a_failed_call_is_counted_once(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    box = box_factory(keys=(BROKEN, GOOD), gateway={"max_retries": 1})
    fake.key_status[BROKEN] = fake.key_status[GOOD] = 503
    _, key = box.new_user("10")
    with pytest.raises(openai.InternalServerError):
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert len(fake.requests) == 2  # both keys tried
    eventually(lambda: total(scrape(box), ERRORS) == 2, "2 upstream errors")
    assert total(scrape(box), ERRORS, provider="fake", code="upstream_error") == 2


def test_a_call_answered_with_an_earlier_keys_rate_limit_counts_each_attempt_once(
    box_factory: BoxFactory, fake: FakeOpenAI
) -> None:
    """The first key a 429, the other refusing the key (its probe works): the client gets the
    429 (the limited key answers again after its wait), and the metric counts each attempt
    once, the 429 and the refusal, not the 429 twice."""
    box = box_factory(keys=(BROKEN, GOOD), gateway={"max_retries": 2})
    fake.push(Reply(status=429, error={"message": "slow down", "type": "requests"}))
    fake.key_status[GOOD] = 401
    _, key = box.new_user("10")
    with pytest.raises(openai.RateLimitError):
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO)
    assert len(fake.requests) == 2
    eventually(lambda: total(scrape(box), ERRORS) >= 2, "2 upstream errors")
    samples = scrape(box)
    assert total(samples, ERRORS, provider="fake", code="rate_limited") == 1
    assert total(samples, ERRORS, provider="fake") == 2
