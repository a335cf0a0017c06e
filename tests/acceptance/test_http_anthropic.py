"""docs/http-api.md "Inference" for an `anthropic` provider, from the outside: an OpenAI client
sees the same shapes, usage with cost_usd, the cost header and error statuses as with `openai`
ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest

from tests.acceptance.conftest import Box, assert_envelope
from tests.fakes.anthropic_upstream import FakeAnthropic, Reply, ToolUse

pytestmark = pytest.mark.timeout(60)
CLAUDE = "claude/opus"
HI = [{"role": "user", "content": "hi"}]
PROVIDER_KEY = "sk-ant-acceptance-0001"


@pytest.fixture(scope="module")
def claude(box: Box) -> Iterator[FakeAnthropic]:
    """The fake Anthropic API, added to the running box as provider `claude` with the CLI."""
    fake = FakeAnthropic(api_keys=(PROVIDER_KEY,)).start()
    box.cli("providers", "add", "claude", "--kind", "anthropic", "--base-url", fake.base_url,
            "--key", PROVIDER_KEY)  # fmt: skip
    box.cli("models", "set", CLAUDE, "--upstream-model", "claude-opus-4-6",
            "--input-per-1m", "15", "--output-per-1m", "75")  # fmt: skip
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _fresh(claude: FakeAnthropic) -> None:
    claude.reset()


def test_a_completion_is_openai_shaped_with_usage_cost_and_header(
    box: Box, claude: FakeAnthropic
) -> None:
    claude.script(Reply(text="Hej!", input_tokens=100, output_tokens=10))
    with box.http(box.shared_key) as http:
        response = http.post("/v1/chat/completions", json={"model": CLAUDE, "messages": HI})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == CLAUDE
    assert type(body["created"]) is int and isinstance(body["id"], str)
    choice = body["choices"][0]
    assert choice["message"] == choice["message"] | {"role": "assistant", "content": "Hej!"}
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (
        100, 10, 110)  # fmt: skip
    cost = Decimal("0.00225")  # 100 * 15/1M + 10 * 75/1M
    assert Decimal(str(usage["cost_usd"])) == cost
    assert Decimal(response.headers["x-codelace-cost-usd"]) == cost


def test_a_stream_with_usage_ends_with_the_usage_chunk_and_done(
    box: Box, claude: FakeAnthropic
) -> None:
    claude.script(Reply(text="one two three", input_tokens=30, output_tokens=3))
    client = box.sdk(box.shared_key)
    chunks = list(
        client.chat.completions.create(
            model=CLAUDE,
            messages=HI,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (30, 3)
    assert Decimal(str(usage.model_extra["cost_usd"])) == Decimal("0.000675")  # type: ignore[index]


def test_a_stream_without_usage_has_no_usage_and_ends_with_done(
    box: Box, claude: FakeAnthropic
) -> None:
    claude.script(Reply(text="plain"))
    body = {"model": CLAUDE, "messages": HI, "stream": True}
    with box.http(box.shared_key) as http:
        response = http.post("/v1/chat/completions", json=body)
    data = [line[6:] for line in response.text.split("\n") if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert chunks and all(not c.get("usage") for c in chunks)
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == CLAUDE for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert (response.status_code, text) == (200, "plain")


def test_tool_calls_come_back_in_openai_shape(box: Box, claude: FakeAnthropic) -> None:
    call = ToolUse("toolu_01", "get_weather", {"city": "Oslo"})
    claude.script(Reply(text="", tool_uses=[call]))
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]  # fmt: skip
    completion = box.sdk(box.shared_key).chat.completions.create(
        model=CLAUDE,
        messages=HI,  # type: ignore[arg-type]
        tools=tools,  # type: ignore[arg-type]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    [tool_call] = choice.message.tool_calls or []
    assert tool_call.id == "toolu_01" and tool_call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(tool_call.function.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("status", "kind", "expected"),
    [(429, "rate_limit_error", 429), (500, "api_error", 502), (529, "overloaded_error", 503)],
)
def test_upstream_failures_map_to_the_spec_statuses(
    box: Box, claude: FakeAnthropic, status: int, kind: str, expected: int
) -> None:
    claude.script(Reply.error(status, kind, "nope"))
    with box.http(box.shared_key) as http:
        response = http.post("/v1/chat/completions", json={"model": CLAUDE, "messages": HI})
    assert_envelope(response, expected)
    if expected == 429:
        assert int(response.headers["retry-after"]) >= 1


ODD_VALUES: list[object] = [None, True, -1, 1.5, 10**30, "x", "", [], {}, [None], {"a": 1}]
CHAT_FIELDS = ["messages", "stream", "stream_options", "max_tokens", "n", "temperature", "stop",
               "tools", "tool_choice", "response_format", "seed", "user", "metadata", "top_p",
               "max_completion_tokens", "reasoning_effort", "parallel_tool_calls"]  # fmt: skip
ODD_PARTS: list[object] = [
    [None],
    ["text"],
    [{"type": "text"}],
    [{"type": "text", "text": 5}],
    [{"type": "image_url"}],
    [{"type": "image_url", "image_url": "x"}],
    [{"type": "image_url", "image_url": {"url": 5}}],
    [{"type": "image_url", "image_url": {"url": "data:nothing"}}],
    [{"type": "mystery"}],
]


def test_no_odd_request_to_an_anthropic_model_makes_a_5xx(box: Box, claude: FakeAnthropic) -> None:
    """Translation refuses what it cannot translate with a 4xx envelope, never a 500."""
    odd_messages = (
        [[{"role": "user", "content": part}] for part in ODD_PARTS]
        + [[{"role": "assistant", "content": None, "tool_calls": value}] for value in ODD_VALUES]
        + [[{"role": "tool", "content": "x", "tool_call_id": value}] for value in ODD_VALUES]
    )
    bodies = [{"model": CLAUDE, "messages": HI, f: v} for f in CHAT_FIELDS for v in ODD_VALUES]
    bodies += [{"model": CLAUDE, "messages": messages} for messages in odd_messages]
    with box.http(box.shared_key) as http:
        for body in bodies:
            response = http.post("/v1/chat/completions", json=body)
            assert response.status_code < 500, (body, response.text)
            if response.status_code >= 400:
                assert_envelope(response, response.status_code)
