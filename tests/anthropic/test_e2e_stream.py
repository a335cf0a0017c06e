"""End to end, streamed: Anthropic SSE through the real box to the openai SDK, as it arrives."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionChunk, ChatCompletionStreamOptionsParam

from tests.anthropic.conftest import MODEL, AnthropicBox, expected_cost_nanos
from tests.anthropic.test_e2e_chat import TWO_CALLS, WEATHER_TOOLS
from tests.fakes.anthropic_upstream import FakeAnthropic, Reply, ToolUse
from tests.support import TLS

pytestmark = pytest.mark.timeout(60)
USAGE: ChatCompletionStreamOptionsParam = {"include_usage": True}


def collect(chunks: Any) -> dict[str, Any]:
    """What a client assembles from a stream: text, reasoning, tool calls, finish, usage."""
    out: dict[str, Any] = {"text": "", "reasoning": "", "calls": {}, "finish": None, "usage": None}
    out["roles"] = []
    out["content_chunks"] = 0
    for chunk in chunks:
        assert isinstance(chunk, ChatCompletionChunk)
        if chunk.usage is not None:
            out["usage"] = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta
            if delta.role:
                out["roles"].append(delta.role)
            if delta.content:
                out["text"] += delta.content
                out["content_chunks"] += 1
            out["reasoning"] += (delta.model_extra or {}).get("reasoning_content", "")
            for call in delta.tool_calls or []:
                slot = out["calls"].setdefault(call.index, {"id": None, "name": "", "args": ""})
                slot["id"] = call.id or slot["id"]
                if call.function is not None:
                    slot["name"] += call.function.name or ""
                    slot["args"] += call.function.arguments or ""
            if choice.finish_reason:
                out["finish"] = choice.finish_reason
    return out


def as_tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Assembled streamed calls as the assistant message's `tool_calls` for the next turn."""
    return [
        {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["args"]}}
        for c in calls
    ]


def test_text_stream_with_usage_chunk_and_exact_cost(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    email, client = box.new_user()
    before, _ = box.balance_nanos(email)
    text = "Streams arrive in small pieces, one delta at a time."
    fresh_fake.script(Reply(text=text, input_tokens=321, output_tokens=45))
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "stream please"}],
        stream=True,
        stream_options=USAGE,
    )
    got = collect(stream)
    assert got["roles"] == ["assistant"]
    assert got["text"] == text
    assert got["content_chunks"] == -(-len(text) // 4)  # the fake sends 4 characters a delta
    assert got["finish"] == "stop"
    cost = expected_cost_nanos(321, 45)
    assert (got["usage"].prompt_tokens, got["usage"].completion_tokens) == (321, 45)
    assert got["usage"].model_dump()["cost_usd"] == pytest.approx(cost / 10**9, abs=1e-12)
    assert box.balance_nanos(email) == (before - cost, 0)
    assert fresh_fake.requests[0].body["stream"] is True
    [row] = box.usage_rows(email)
    assert (row["status"], row["cost_nanos"], row["stream"]) == ("ok", cost, 1)


def test_two_parallel_tool_calls_stream_then_streamed_answer(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    email, client = box.new_user()
    before, _ = box.balance_nanos(email)
    fresh_fake.script(
        Reply(text="Let me look.", tool_uses=TWO_CALLS, input_tokens=500, output_tokens=70),
        Reply(text="Rain and 14:05.", input_tokens=650, output_tokens=8),
    )
    messages: list[Any] = [{"role": "user", "content": "Weather and time in Paris?"}]
    got = collect(
        client.chat.completions.create(
            model=MODEL, messages=messages, tools=WEATHER_TOOLS, stream=True, stream_options=USAGE
        )
    )
    assert got["finish"] == "tool_calls"
    assert got["text"] == "Let me look."
    assert sorted(got["calls"]) == [0, 1]
    calls = [got["calls"][i] for i in (0, 1)]
    assert [(c["id"], c["name"]) for c in calls] == [(t.id, t.name) for t in TWO_CALLS]
    assert [json.loads(c["args"]) for c in calls] == [t.input for t in TWO_CALLS]

    messages += [
        {"role": "assistant", "content": got["text"], "tool_calls": as_tool_calls(calls)},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "rain"},
        {"role": "tool", "tool_call_id": calls[1]["id"], "content": "14:05"},
    ]
    final = collect(
        client.chat.completions.create(
            model=MODEL, messages=messages, tools=WEATHER_TOOLS, stream=True, stream_options=USAGE
        )
    )
    assert (final["text"], final["finish"]) == ("Rain and 14:05.", "stop")
    results = fresh_fake.requests[1].body["messages"][2]["content"]
    assert [b["tool_use_id"] for b in results] == [t.id for t in TWO_CALLS]
    total = expected_cost_nanos(500, 70) + expected_cost_nanos(650, 8)
    assert box.balance_nanos(email) == (before - total, 0)


def test_thinking_stream_gives_reasoning_content(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    _, client = box.new_user()
    fresh_fake.script(Reply(thinking="Two plus two is four.", text="4", output_tokens=40))
    got = collect(
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "2+2?"}],
            reasoning_effort="low",
            max_tokens=10000,
            stream=True,
        )
    )
    assert got["reasoning"] == "Two plus two is four."
    assert (got["text"], got["finish"]) == ("4", "stop")
    assert got["usage"] is None  # no stream_options.include_usage: no usage chunk
    assert fresh_fake.requests[0].body["thinking"] == {"type": "enabled", "budget_tokens": 2000}


def test_error_event_mid_stream_ends_it_with_an_error_and_costs_nothing(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    email, client = box.new_user()
    before = box.balance_nanos(email)
    # delay: the events reach the box in separate reads (see the report on batched reads)
    fresh_fake.script(
        Reply(text="Once upon a time", error_after_deltas=2, error_type="overloaded_error",
              error_message="Overloaded", delay_sec=0.05)
    )  # fmt: skip
    received = ""
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "story"}], stream=True
    )
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received += "".join(c.delta.content or "" for c in chunk.choices)
    assert received == "Once upo"
    assert "Overloaded" in caught.value.message
    assert box.balance_nanos(email) == before
    [row] = box.usage_rows(email)
    assert (row["status"], row["cost_nanos"], row["error_code"]) == ("error", 0, "overloaded_error")


def test_overloaded_before_the_stream_is_retried(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    _, client = box.new_user()
    fresh_fake.script(Reply.error(529, "overloaded_error", "Overloaded"), Reply(text="ok"))
    got = collect(
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert (got["text"], got["finish"]) == ("ok", "stop")
    assert len(fresh_fake.requests) == 2


def test_chunks_are_relayed_as_they_arrive(box: AnthropicBox, fresh_fake: FakeAnthropic) -> None:
    _, client = box.new_user()
    fresh_fake.script(Reply(text="x" * 40, chunk_chars=2, delay_sec=0.05))  # ~1.3 s of events
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "slowly"}], stream=True
    )
    started = time.monotonic()
    first_text_at = None
    for chunk in stream:
        if first_text_at is None and any(c.delta.content for c in chunk.choices):
            first_text_at = time.monotonic() - started
    total = time.monotonic() - started
    assert first_text_at is not None
    assert total > 1.0
    assert first_text_at < total - 0.7


def test_text_before_an_error_in_the_same_read_still_reaches_the_client(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    _, client = box.new_user()
    # no delay: the whole stream, error event included, reaches the box in one read
    fresh_fake.script(
        Reply(text="Once upon a time", error_after_deltas=3, error_type="overloaded_error",
              error_message="Overloaded")
    )  # fmt: skip
    received = ""
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "story"}], stream=True
    )
    with pytest.raises(openai.APIError, match="Overloaded"):
        for chunk in stream:
            received += "".join(c.delta.content or "" for c in chunk.choices)
    assert received == "Once upon a "


def test_streamed_tool_call_without_arguments_gives_an_object_the_next_turn_takes(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    _, client = box.new_user()
    tools: list[Any] = [{"type": "function", "function": {"name": "get_time"}}]
    fresh_fake.script(
        Reply(text="", tool_uses=[ToolUse("toolu_01NoArgs7xYz", "get_time", {})]),
        Reply(text="It is noon."),
    )
    messages: list[Any] = [{"role": "user", "content": "What time is it?"}]
    got = collect(
        client.chat.completions.create(model=MODEL, messages=messages, tools=tools, stream=True)
    )
    assert got["finish"] == "tool_calls"
    [call] = got["calls"].values()
    assert (call["id"], call["name"], json.loads(call["args"])) == (
        "toolu_01NoArgs7xYz",
        "get_time",
        {},
    )
    messages += [
        {"role": "assistant", "content": None, "tool_calls": as_tool_calls([call])},
        {"role": "tool", "tool_call_id": call["id"], "content": "12:00"},
    ]
    final = collect(
        client.chat.completions.create(model=MODEL, messages=messages, tools=tools, stream=True)
    )
    assert final["text"] == "It is noon."
    assert fresh_fake.requests[1].body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "toolu_01NoArgs7xYz", "name": "get_time", "input": {}}
    ]


def test_streamed_cache_reads_and_writes_are_billed_as_input(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    email, client = box.new_user()
    before, _ = box.balance_nanos(email)
    fresh_fake.script(
        Reply(text="cached", input_tokens=7, cache_read_input_tokens=3000,
              cache_creation_input_tokens=500, output_tokens=3)
    )  # fmt: skip
    got = collect(
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True,
            stream_options=USAGE,
        )
    )  # fmt: skip
    usage = got["usage"]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (3507, 3, 3510)
    assert usage.prompt_tokens_details.cached_tokens == 3000
    cost = expected_cost_nanos(3507, 3)
    assert usage.model_dump()["cost_usd"] == pytest.approx(cost / 10**9, abs=1e-12)
    assert box.balance_nanos(email) == (before - cost, 0)


def test_thinking_tool_loop_hands_the_signed_block_back_and_keeps_thinking_on(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    _, client = box.new_user()
    use = ToolUse("toolu_01Think5Loop", "get_weather", {"city": "Oslo"})
    fresh_fake.script(
        Reply(thinking="Need the weather.", text="", tool_uses=[use]),
        Reply(thinking="It is cold.", text="Cold: -3C."),
    )
    messages: list[Any] = [{"role": "user", "content": "Oslo weather?"}]
    thinking_blocks: list[Any] = []
    calls: dict[int, dict[str, Any]] = {}
    for chunk in client.chat.completions.create(
        model=MODEL, messages=messages, tools=WEATHER_TOOLS, reasoning_effort="low",
        max_tokens=8000, stream=True,
    ):  # fmt: skip
        for choice in chunk.choices:
            thinking_blocks += (choice.delta.model_extra or {}).get("thinking_blocks", [])
            for call in choice.delta.tool_calls or []:
                slot = calls.setdefault(call.index, {"id": call.id, "name": "", "args": ""})
                slot["name"] += (call.function.name or "") if call.function else ""
                slot["args"] += (call.function.arguments or "") if call.function else ""
    assert [b["thinking"] for b in thinking_blocks] == ["Need the weather."]
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": as_tool_calls([calls[0]]),
            "thinking_blocks": thinking_blocks,
        },
        {"role": "tool", "tool_call_id": use.id, "content": "-3C"},
    ]
    final = collect(
        client.chat.completions.create(
            model=MODEL, messages=messages, tools=WEATHER_TOOLS, reasoning_effort="low",
            max_tokens=8000, stream=True,
        )
    )  # fmt: skip
    assert final["text"] == "Cold: -3C."
    second = fresh_fake.requests[1].body
    assert second["thinking"] == {"type": "enabled", "budget_tokens": 1600}
    assert second["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "Need the weather.",
        "signature": Reply().signature,
    }


def _upstream_error_codes(box: AnthropicBox) -> set[str]:
    """The `code` labels of codelace_upstream_errors_total in a scrape of /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(box.server.base_url + "/metrics", timeout=10, verify=TLS).text
    return {
        sample.labels["code"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "codelace_upstream_errors_total"
    }


def test_an_upstreams_own_error_types_do_not_grow_the_metric_labels(
    box: AnthropicBox, fresh_fake: FakeAnthropic
) -> None:
    """An Anthropic-compatible upstream (a proxy, a local server) may name its stream errors
    anything (here a fresh word per request): /metrics must not grow a series for each one.
    Anthropic's documented error types keep their own label."""
    _, client = box.new_user()
    made_up = [f"proxy_error_{n}_{time.time_ns()}" for n in range(3)]
    fresh_fake.script(
        *(Reply(text="Once upon a time", error_after_deltas=1, error_type=kind,
                error_message="the proxy broke", delay_sec=0.05) for kind in made_up),
        Reply(text="Once upon a time", error_after_deltas=1, error_type="overloaded_error",
              error_message="Overloaded", delay_sec=0.05),
    )  # fmt: skip
    for _ in range(len(made_up) + 1):
        stream = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "story"}], stream=True
        )
        with pytest.raises(openai.APIError):
            for _chunk in stream:
                pass
    codes = _upstream_error_codes(box)
    assert "overloaded_error" in codes
    assert not codes & set(made_up), codes
    assert "upstream_error" in codes
