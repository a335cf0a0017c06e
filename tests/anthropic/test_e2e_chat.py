"""End to end, not streamed: the openai SDK -> the real box -> the strict fake Anthropic API."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import openai
import pytest

from tests.anthropic.conftest import (
    MAX_OUTPUT,
    MODEL,
    PROVIDER_KEYS,
    REVOKED_KEY,
    ROTATION_MODEL,
    UPSTREAM_MODEL,
    AnthropicBox,
    expected_cost_nanos,
)
from tests.fakes.anthropic_upstream import FakeAnthropic, Reply, ToolUse

pytestmark = pytest.mark.timeout(60)

WEATHER_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
        },
    },
]
TWO_CALLS = [
    ToolUse("toolu_01A09q90qw90lq917835lq9", "get_weather", {"city": "Paris"}),
    ToolUse("toolu_01B7pZ2rLm4nQ8sT6vW3xY5c", "get_time", {"tz": "Europe/Paris"}),
]


def test_text_answer_usage_and_exact_cost(box: AnthropicBox, fresh_fake: FakeAnthropic) -> None:
    email, client = box.new_user()
    before, _ = box.balance_nanos(email)
    fresh_fake.script(Reply(text="Bonjour !", input_tokens=1234, output_tokens=567))
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Say hello."},
        ],
        user="team-7",
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Bonjour !"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == MODEL
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (1234, 567)
    cost = expected_cost_nanos(1234, 567)
    assert cost == 1234 * 15_000 + 567 * 75_000
    assert Decimal(raw.headers["x-codelace-cost-usd"]) == Decimal(cost) / 10**9
    assert completion.usage.model_dump()["cost_usd"] == pytest.approx(cost / 10**9, abs=1e-12)
    assert box.balance_nanos(email) == (before - cost, 0)

    [sent] = fresh_fake.requests
    assert sent.headers["x-api-key"] in PROVIDER_KEYS
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body == {
        "model": UPSTREAM_MODEL,
        "max_tokens": MAX_OUTPUT,
        "system": [{"type": "text", "text": "Answer in French."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello."}]}],
        "metadata": {"user_id": "team-7"},
    }
    [row] = box.usage_rows(email)
    assert (row["input_tokens"], row["output_tokens"], row["cost_nanos"]) == (1234, 567, cost)


def test_cache_reads_and_writes_are_billed_as_input(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    email, client = box.new_user()
    before, _ = box.balance_nanos(email)
    fresh_fake.script(
        Reply(input_tokens=50, cache_read_input_tokens=1000, cache_creation_input_tokens=200,
              output_tokens=9)
    )  # fmt: skip
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=100
    )
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == 1250
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 1000
    assert box.balance_nanos(email)[0] == before - expected_cost_nanos(1250, 9)
    assert fresh_fake.requests[0].body["max_tokens"] == 100


def test_parallel_tool_calls_then_multi_turn_answer(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    email, client = box.new_user()
    before, _ = box.balance_nanos(email)
    fresh_fake.script(
        Reply(text="Checking both.", tool_uses=TWO_CALLS, input_tokens=300, output_tokens=80),
        Reply(text="Rainy, 14:05 in Paris.", input_tokens=420, output_tokens=12),
    )
    messages: list[Any] = [{"role": "user", "content": "Weather and time in Paris?"}]
    first = client.chat.completions.create(
        model=MODEL, messages=messages, tools=WEATHER_TOOLS, tool_choice="auto"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking both."
    calls = [c for c in choice.message.tool_calls or [] if c.type == "function"]
    assert [(c.id, c.function.name) for c in calls] == [(t.id, t.name) for t in TWO_CALLS]
    assert [json.loads(c.function.arguments) for c in calls] == [t.input for t in TWO_CALLS]

    messages.append(choice.message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": calls[0].id, "content": "rain, 11C"})
    messages.append({"role": "tool", "tool_call_id": calls[1].id, "content": "14:05"})
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=WEATHER_TOOLS)
    assert second.choices[0].message.content == "Rainy, 14:05 in Paris."
    assert second.choices[0].finish_reason == "stop"

    sent = fresh_fake.requests[1].body
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][1]["content"][1:] == [
        {"type": "tool_use", "id": t.id, "name": t.name, "input": t.input} for t in TWO_CALLS
    ]
    assert sent["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": TWO_CALLS[0].id, "content": "rain, 11C"},
        {"type": "tool_result", "tool_use_id": TWO_CALLS[1].id, "content": "14:05"},
    ]
    assert sent["tools"][0]["input_schema"]["required"] == ["city"]
    total = expected_cost_nanos(300, 80) + expected_cost_nanos(420, 12)
    assert box.balance_nanos(email) == (before - total, 0)


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [("max_tokens", "length"), ("stop_sequence", "stop"), ("refusal", "content_filter")],
)
def test_finish_reasons(
    box: AnthropicBox, fresh_fake: FakeAnthropic, stop_reason: str, finish_reason: str
) -> None:
    _, client = box.new_user()
    fresh_fake.script(Reply(text="partial", stop_reason=stop_reason))
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "go"}], stop=["END"]
    )
    assert completion.choices[0].finish_reason == finish_reason
    assert fresh_fake.requests[0].body["stop_sequences"] == ["END"]


def test_reasoning_effort_and_image(box: AnthropicBox, fresh_fake: FakeAnthropic) -> None:
    _, client = box.new_user()
    fresh_fake.script(Reply(thinking="The sky is blue.", text="Blue.", output_tokens=300))
    pixel = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
    pixel += "AAAABJRU5ErkJggg=="
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What colour?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{pixel}"}},
                ],
            }
        ],
        reasoning_effort="medium",
        max_completion_tokens=8000,
    )
    message = completion.choices[0].message.model_dump()
    assert message["content"] == "Blue."
    assert message["reasoning_content"] == "The sky is blue."
    sent = fresh_fake.requests[0].body
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 4000}
    assert sent["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": pixel},
    }


def test_overloaded_529_is_retried(box: AnthropicBox, fresh_fake: FakeAnthropic) -> None:
    email, client = box.new_user()
    before, _ = box.balance_nanos(email)
    fresh_fake.script(
        Reply.error(529, "overloaded_error", "Overloaded"),
        Reply(text="made it", input_tokens=10, output_tokens=2),
    )
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content == "made it"
    assert len(fresh_fake.requests) == 2
    assert box.balance_nanos(email) == (before - expected_cost_nanos(10, 2), 0)


def test_upstream_failure_costs_nothing(box: AnthropicBox, fresh_fake: FakeAnthropic) -> None:
    email, client = box.new_user()
    before = box.balance_nanos(email)
    fresh_fake.script(*[Reply.error(500, "api_error", "Internal server error")] * 3)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 502  # overloaded (529) is a 503: test_e2e_reasoning.py
    assert "Internal server error" in str(caught.value.message)
    assert box.balance_nanos(email) == before


def test_unhonourable_request_is_400_before_any_upstream_call(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    email, client = box.new_user()
    before = box.balance_nanos(email)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], n=2
        )
    assert "n > 1" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], logprobs=True
        )
    assert "logprobs" in caught.value.message
    assert fresh_fake.requests == []
    assert box.balance_nanos(email) == before


@pytest.mark.parametrize(
    "extra", [{"service_tier": "priority"}, {"models": ["anthropic/claude-opus-4.6"]}]
)
def test_billed_fields_are_refused_for_anthropic_providers_too(
    box: AnthropicBox, fresh_fake: FakeAnthropic, extra: dict[str, Any]
) -> None:
    email, client = box.new_user()
    before = box.balance_nanos(email)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], extra_body=extra
        )
    assert caught.value.code == "field_not_allowed"
    assert caught.value.body["param"] == next(iter(extra))  # type: ignore[index]
    assert fresh_fake.requests == []
    assert box.balance_nanos(email) == before


def test_rejected_key_leaves_the_rotation(box: AnthropicBox, fresh_fake: FakeAnthropic) -> None:
    _, client = box.new_user()
    fresh_fake.script(Reply(text="one"), Reply(text="two"))
    for expected in ("one", "two"):
        completion = client.chat.completions.create(
            model=ROTATION_MODEL, messages=[{"role": "user", "content": "hi"}]
        )
        assert completion.choices[0].message.content == expected
    used = [r.headers["x-api-key"] for r in fresh_fake.requests]
    assert used == [REVOKED_KEY, PROVIDER_KEYS[1], PROVIDER_KEYS[1]]
    assert fresh_fake.requests[1].body["model"] == "claude-rotation"
    providers = json.loads(box.cli("providers", "list", "--json"))
    assert REVOKED_KEY not in json.dumps(providers)
    [rotation] = [p for p in providers if p["name"] == "anth-rot"]
    assert [k["failing"] for k in rotation["keys"]] == [True, False]
    assert "invalid x-api-key" in rotation["keys"][0]["failure_reason"]


@pytest.mark.parametrize(
    ("status", "error_type", "message"),
    [
        (400, "invalid_request_error", "messages.0.content: prompt is too long: 210000 tokens"),
        (413, "request_too_large", "Request exceeds the maximum allowed number of bytes."),
    ],
)
def test_upstream_refusal_is_relayed_once_with_its_status_and_message(
    box: AnthropicBox, fresh_fake: FakeAnthropic, status: int, error_type: str, message: str
) -> None:
    email, client = box.new_user()
    before = box.balance_nanos(email)
    fresh_fake.script(Reply.error(status, error_type, message), Reply(text="never"))
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == status
    assert message in caught.value.message
    assert len(fresh_fake.requests) == 1  # the client's own fault: not retried
    assert box.balance_nanos(email) == before


def test_rate_limited_key_is_retried_on_the_other_key(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    _, client = box.new_user()
    fresh_fake.script(
        Reply.error(429, "rate_limit_error", "Number of request tokens has exceeded your limit"),
        Reply(text="second key"),
    )
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content == "second key"
    first, second = (r.headers["x-api-key"] for r in fresh_fake.requests)
    assert {first, second} == set(PROVIDER_KEYS)


@pytest.mark.parametrize(
    ("status", "error_type", "message"),
    [
        (
            400,
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & "
            "Billing to upgrade or purchase credits.",
        ),
        (402, "billing_error", "There is an issue with the billing of this organization."),
        # the spend limits Anthropic documents (platform.claude.com/docs/en/api/errors): one
        # the operator set on the organization or a workspace (400), and the usage tier's
        # monthly cap (429 rate_limit_error without retry-after; retrying fails till next month)
        (
            400,
            "invalid_request_error",
            "You have reached your specified API usage limits. You will regain access on "
            "2026-01-01 at 00:00 UTC.",
        ),
        (
            400,
            "invalid_request_error",
            "You have reached your specified workspace API usage limits. You will regain "
            "access on 2026-01-01 at 00:00 UTC.",
        ),
        (
            429,
            "rate_limit_error",
            "You have reached your API usage limits: your organization has crossed its monthly "
            "API usage threshold, set based on your organization's API tier. You will regain "
            "access on 2026-09-01 at 00:00 UTC.",
        ),
        # OpenRouter's Messages endpoint, for a key past the credit limit set on it
        (
            403,
            "permission_error",
            "Key limit exceeded (monthly limit). Manage it using https://openrouter.ai/settings/keys",
        ),
    ],
)
def test_an_operator_account_out_of_credit_moves_on_then_is_503_not_the_users_error(
    box: AnthropicBox, fresh_fake: FakeAnthropic, status: int, error_type: str, message: str
) -> None:
    """Anthropic's "credit balance is too low" (a 400), billing_error (402) and its spend
    limits (a 400, or a 429 that waiting a second does not end) speak of the operator's
    account: the other key is tried, and at the end the user sees 503, free."""
    email, client = box.new_user()
    before, _ = box.balance_nanos(email)
    fresh_fake.script(Reply.error(status, error_type, message), Reply(text="second key"))
    completion = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].message.content == "second key"
    first, second = (r.headers["x-api-key"] for r in fresh_fake.requests)
    assert {first, second} == set(PROVIDER_KEYS)
    charged = before - box.balance_nanos(email)[0]
    assert charged > 0
    fresh_fake.script(*[Reply.error(status, error_type, message)] * 3)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 503
    assert caught.value.code == "provider_out_of_credit"
    assert message in caught.value.message
    assert box.balance_nanos(email) == (before - charged, 0)
