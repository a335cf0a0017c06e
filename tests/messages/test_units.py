"""The pure parts: the pass-through's usage, the synthesized stream, the request translation
and the price of cache tokens, from recorded wire data."""

from __future__ import annotations

import json

import pytest

from codelace_box.errors import InvalidRequest
from codelace_box.gateway.advisor import AdvisorCharge, same_model
from codelace_box.gateway.charges import CacheTokens, Settlement, usage_values
from codelace_box.providers.anthropic_passthrough import PassthroughStream, upstream_body
from codelace_box.providers.anthropic_response import MAX_REPORTED_MODELS, MORE_MODELS
from codelace_box.providers.anthropic_response import usage_from as anthropic_usage
from codelace_box.providers.base import AdvisorTokens, SSEEvent
from codelace_box.providers.messages_openai import chat_body
from codelace_box.providers.messages_openai_stream import OpenAIToMessagesStream
from codelace_box.providers.openai_stream import OpenAIStreamTranslator
from codelace_box.providers.openai_usage import usage_from


def _event(data: dict) -> SSEEvent:
    return SSEEvent(json.dumps(data), data.get("type"))


def test_the_passthrough_reads_cumulative_usage_with_one_hour_writes() -> None:
    stream = PassthroughStream("anthropic/x")
    start_usage = {"input_tokens": 10, "cache_read_input_tokens": 500,
                   "cache_creation_input_tokens": 300, "output_tokens": 1}  # fmt: skip
    start = {"type": "message_start", "message": {"model": "up", "usage": start_usage}}
    [relayed] = stream.feed(_event(start))
    assert relayed["message"]["model"] == "anthropic/x"
    assert stream.input_tokens_seen == 810
    delta = {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
             "usage": {"output_tokens": 42, "cache_creation": {
                 "ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 100}}}  # fmt: skip
    stream.feed(_event(delta))
    usage = stream.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens) == (810, 42)
    assert (usage.cache_read_tokens, usage.cache_write_tokens) == (500, 300)
    assert usage.cache_write_1h_tokens == 100
    assert stream.feed(_event({"type": "brand_new", "x": 1})) == [{"type": "brand_new", "x": 1}]


def test_the_upstream_body_keeps_order_and_caps_max_tokens() -> None:
    body = {"max_tokens": 9000, "model": "alias", "messages": [], "zeta": 1}
    assert upstream_body(body, "up", 4096) == {"max_tokens": 4096, "model": "up",
                                               "messages": [], "zeta": 1}  # fmt: skip
    assert list(upstream_body(body, "up", 4096)) == ["max_tokens", "model", "messages", "zeta"]
    assert upstream_body(body, "up", 10000)["max_tokens"] == 9000


def test_cache_tokens_are_billed_at_their_prices_rounded_up_once() -> None:
    cache = CacheTokens(read_tokens=1000, write_tokens=300, write_1h_tokens=100,
                        read_per_1m_nanos=300_000_000, write_per_1m_nanos=3_750_000_000,
                        write_1h_per_1m_nanos=6_000_000_000)  # fmt: skip
    item = Settlement(request_id="r", user_id=1, key_id=None, model="m", provider="p",
                      upstream_model="u", input_per_1m_nanos=3_000_000_000,
                      output_per_1m_nanos=15_000_000_000, input_tokens=1400, output_tokens=7,
                      status="ok", stream=False, cache=cache)  # fmt: skip
    # 100 uncached * 3000 + 7 * 15000 + 1000 * 300 + 200 * 3750 + 100 * 6000 nano-USD
    assert item.cost_nanos() == 300_000 + 105_000 + 300_000 + 750_000 + 600_000


def test_an_advisor_models_tokens_are_billed_at_its_prices_rounded_up_once() -> None:
    """Anthropic's usage with an `advisor_message` iteration: the call's counts hold the
    advisor's, which are taken out and priced at the advisor's catalog prices."""
    advisor = {"type": "advisor_message", "model": "claude-opus-4-6", "input_tokens": 11,
               "cache_read_input_tokens": 5, "cache_creation_input_tokens": 3,
               "cache_creation": {"ephemeral_5m_input_tokens": 1,
                                  "ephemeral_1h_input_tokens": 2}, "output_tokens": 13}  # fmt: skip
    own = {"input_tokens": 7, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 2,
           "output_tokens": 9}  # fmt: skip
    usage = anthropic_usage({**own, "iterations": [{"type": "message", **own}, advisor]})
    assert (usage.input_tokens, usage.output_tokens) == (7 + 4 + 2 + 11 + 5 + 3, 9 + 13)
    assert usage.advisor == AdvisorTokens(
        input_tokens=19, output_tokens=13, cache_read_tokens=5, cache_write_tokens=3,
        cache_write_1h_tokens=2, models=("claude-opus-4-6",),
    )  # fmt: skip
    cache = CacheTokens(read_tokens=usage.cache_read_tokens, write_tokens=usage.cache_write_tokens,
                        write_1h_tokens=usage.cache_write_1h_tokens, read_per_1m_nanos=300,
                        write_per_1m_nanos=3750, write_1h_per_1m_nanos=6000)  # fmt: skip
    charge = AdvisorCharge(model="a/opus", input_per_1m_nanos=5000, output_per_1m_nanos=25_000,
                           cache_read_per_1m_nanos=500, cache_write_per_1m_nanos=6250,
                           cache_write_1h_per_1m_nanos=10_000, tokens=usage.advisor)  # fmt: skip
    item = Settlement(request_id="r", user_id=1, key_id=None, model="m", provider="p",
                      upstream_model="u", input_per_1m_nanos=3000, output_per_1m_nanos=15_000,
                      input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                      status="ok", stream=False, cache=cache, advisor=charge)  # fmt: skip
    executor = 7 * 3000 + 9 * 15_000 + 4 * 300 + 2 * 3750
    advised = 11 * 5000 + 13 * 25_000 + 5 * 500 + 1 * 6250 + 2 * 10_000
    assert item.cost_nanos() == -(-(executor + advised) // 1_000_000) == 1  # once, not twice
    assert usage_values(item, 1, 2, "now")[-11:] == (
        "a/opus", 19, 13, 5, 3, 2, 5000, 25_000, 500, 6250, 10_000)  # fmt: skip
    item.advisor = None
    assert len(usage_values(item, 1, 2, "now")) == 25


def test_advisor_models_past_the_kept_ones_still_count_as_another_model() -> None:
    """Eight dated ids of the named advisor are the same model; a ninth distinct one, past the
    bounded list, cannot be checked, so it counts as another model (charged at the dearer)."""
    dated = [f"claude-opus-4-6-2026010{day}" for day in range(1, 10)]
    calls = [{"type": "advisor_message", "model": model, "input_tokens": 1} for model in dated]
    usage = anthropic_usage({"input_tokens": 1, "output_tokens": 1, "iterations": calls})
    assert usage.advisor is not None
    assert usage.advisor.models == (*dated[:MAX_REPORTED_MODELS], MORE_MODELS)
    assert all(same_model("claude-opus-4-6", model) for model in dated)
    assert not same_model("claude-opus-4-6", MORE_MODELS)
    eight = anthropic_usage({"input_tokens": 1, "output_tokens": 1, "iterations": calls[:8]})
    assert eight.advisor is not None and eight.advisor.models == tuple(dated[:8])


def test_openai_cached_tokens_are_cache_reads() -> None:
    usage = usage_from({"prompt_tokens": 100, "completion_tokens": 5,
                        "prompt_tokens_details": {"cached_tokens": 80}})  # fmt: skip
    assert usage is not None and usage.cache_read_tokens == 80
    broken = usage_from({"prompt_tokens": 10, "completion_tokens": 5,
                         "prompt_tokens_details": {"cached_tokens": 999}})  # fmt: skip
    assert broken is not None and broken.cache_read_tokens == 10


def _chunk(delta: dict, finish: str | None = None) -> SSEEvent:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return SSEEvent(json.dumps({"id": "c1", "choices": [choice]}))


def test_the_synthesized_stream_opens_and_closes_blocks_in_order() -> None:
    stream = OpenAIToMessagesStream(OpenAIStreamTranslator("oai/m"), "oai/m")
    chunks = [
        _chunk({"role": "assistant", "reasoning_content": "think"}),
        _chunk({"content": "Hi"}),
        _chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "Read",
                                                                          "arguments": ""}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":1}'}}]}),
        _chunk({}, "tool_calls"),
        SSEEvent(json.dumps({"id": "c1", "choices": [], "usage": {
            "prompt_tokens": 9, "completion_tokens": 4}})),
        SSEEvent("[DONE]"),
    ]  # fmt: skip
    events = [e for c in chunks for e in stream.feed(c)] + stream.finish()
    shape = [(e["type"], e.get("index")) for e in events]
    assert shape == [
        ("message_start", None),
        ("content_block_start", 0), ("content_block_delta", 0),
        ("content_block_stop", 0), ("content_block_start", 1), ("content_block_delta", 1),
        ("content_block_stop", 1), ("content_block_start", 2), ("content_block_delta", 2),
        ("content_block_stop", 2), ("message_delta", None), ("message_stop", None),
    ]  # fmt: skip
    assert events[1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert events[7]["content_block"]["name"] == "Read"
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-2]["usage"]["output_tokens"] == 4 and stream.finished


def test_a_mid_conversation_system_message_stays_a_system_message() -> None:
    body = {"system": [{"type": "text", "text": "A"}], "max_tokens": 5, "messages": [
        {"role": "user", "content": "hi"}, {"role": "system", "content": "B"}]}  # fmt: skip
    assert chat_body(body, 5)["messages"] == [
        {"role": "system", "content": "A"},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": "B"},
    ]


def test_an_assistant_turn_of_thinking_alone_has_empty_text_not_null() -> None:
    """A reasoning model cut at max_tokens while it reasoned leaves a turn of thinking alone;
    Claude Code sends it back, and OpenAI refuses an assistant message whose content is null
    without tool_calls."""
    thinking = {"type": "thinking", "thinking": "hm", "signature": ""}
    turns: list[dict[str, object]] = [
        {"role": "user", "content": "x"}, {"role": "assistant", "content": [thinking]},
        {"role": "user", "content": "go on"}]  # fmt: skip
    assert chat_body({"model": "m", "messages": turns}, 10)["messages"][1] == {
        "role": "assistant", "content": ""}  # fmt: skip
    call = {"type": "tool_use", "id": "t1", "name": "Read", "input": {}}
    turns[1]["content"] = [call]
    body = {"model": "m", "messages": turns}
    assert chat_body(body, 10)["messages"][1]["content"] is None  # as OpenAI sends tool calls


def test_tool_choice_without_tools_sends_neither() -> None:
    """OpenAI refuses tool_choice and parallel_tool_calls without tools (an Anthropic client
    may send `tool_choice: {type: none}` on a call that has none); a forced one is refused."""
    choice = {"type": "none", "disable_parallel_tool_use": True}
    body = {"model": "m", "tool_choice": choice, "messages": [{"role": "user", "content": "x"}]}
    sent = chat_body(body, 10)
    assert "tool_choice" not in sent and "parallel_tool_calls" not in sent
    with pytest.raises(InvalidRequest, match="tool_choice may only be specified while"):
        chat_body({**body, "tool_choice": {"type": "any"}}, 10)
    body["tools"] = [{"name": "Read", "input_schema": {"type": "object"}}]
    sent = chat_body(body, 10)
    assert (sent["tool_choice"], sent["parallel_tool_calls"]) == ("none", False)


def test_cache_writes_bill_the_larger_of_the_flat_count_and_its_5m_1h_split() -> None:
    """An Anthropic-compatible upstream whose flat `cache_creation_input_tokens` is lower than
    the sum of its `cache_creation` split (200 against 300 + 100) was billed the flat count:
    the 1-hour writes it reported were clipped to it and the 5-minute ones partly lost. The
    two views disagree, so the larger, the split's, is billed (and its 1h part at its price);
    a flat count above the split's sum stays the count (the split may leave a kind out)."""
    split = {"ephemeral_5m_input_tokens": 300, "ephemeral_1h_input_tokens": 100}
    counts = {"input_tokens": 10, "output_tokens": 5, "cache_creation": split}
    low = anthropic_usage(counts | {"cache_creation_input_tokens": 200})
    assert (low.input_tokens, low.cache_write_tokens, low.cache_write_1h_tokens) == (410, 400, 100)
    assert low.details["prompt_tokens_details"]["cache_write_tokens"] == 400
    high = anthropic_usage(counts | {"cache_creation_input_tokens": 900})
    assert (high.input_tokens, high.cache_write_tokens, high.cache_write_1h_tokens) == (
        910, 900, 100)  # fmt: skip


WHOLE_OBJECTS = [
    "{}",
    ' {"a" : [ ] } ',
    '{"k": -12.5E+10, "z": 0, "t": [true, false, null]}',
    '{"s": "q\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9 ☃",\n "o": {"x": [{}, [1e3, -0.25]]}}',
]
NO_OBJECT_BEGINS = ["c", "[", "null", '"x"', '{a', '{"a" 1', '{"a":01', '{"a":1.}', '{"a":1,}',
                    '{"a":"\x01"}', '{"a":tru e}', '{"a":1}x', '{,', '{"a":[1,]}', '{"a":-}',
                    '{"a":1e}', '{"a":"\\x"}', '{"a":"\\u12g4"}', '{"a":]', '{"a":[}',
                    '{"a":1]']  # fmt: skip


def test_an_object_prefix_takes_every_beginning_of_an_object_and_nothing_else() -> None:
    from codelace_box.providers.json_prefix import ObjectPrefix

    for whole in WHOLE_OBJECTS:
        assert isinstance(json.loads(whole), dict)
        for end in range(len(whole) + 1):
            assert ObjectPrefix().feed(whole[:end]), whole[:end]
        pieces = ObjectPrefix()
        assert all(pieces.feed(whole[i : i + 3]) for i in range(0, len(whole), 3))
    for text in NO_OBJECT_BEGINS:
        check = ObjectPrefix()
        assert not check.feed(text), text
        assert not check.feed("}"), "once refused, always refused"


@pytest.mark.parametrize(
    ("named", "reported", "same"),
    [
        ("claude-opus-4-6", "claude-opus-4-6", True),
        ("claude-opus-4-6", "claude-opus-4-6-20260101", True),  # the dated id of the alias
        ("claude-opus-4-6-20260101", "claude-opus-4-6", True),
        ("claude-opus-4-6-latest", "claude-opus-4-6-20260101", True),
        ("claude-opus-4-6-20260101", "claude-opus-4-6-20270101", False),  # two snapshots
        ("claude-opus-4-6", "claude-opus-4-7", False),
        ("claude-opus-4-6", "claude-sonnet-4-6", False),
        ("claude-opus-4-6", "claude-opus-4-6-fast", False),
    ],
)
def test_an_advisor_calls_reported_model_is_the_named_one_or_its_dated_id(
    named: str, reported: str, same: bool
) -> None:
    """gateway/advisor.py charges the advisor's tokens at its own prices only when they match."""
    assert same_model(named, reported) is same


def test_a_tool_call_sent_again_whole_is_one_tool_use_block() -> None:
    """A streamed call whose last piece repeats it whole (its id, name and arguments: gateways
    that end a call with a consolidated one) is one tool_use block: a second block of the same
    call made Claude Code run the command twice."""
    stream = OpenAIToMessagesStream(OpenAIStreamTranslator("oai/m"), "oai/m")
    header = {"index": 0, "id": "t1", "type": "function", "function": {"name": "Bash"}}
    args = '{"command": "rm -r build"}'
    chunks = [
        _chunk({"role": "assistant", "tool_calls": [header | {"function": {
            "name": "Bash", "arguments": ""}}]}),
        _chunk({"tool_calls": [{"index": 0, "function": {"arguments": args}}]}),
        _chunk({"tool_calls": [header | {"function": {"name": "Bash", "arguments": args}}]}),
        _chunk({}, "tool_calls"),
        SSEEvent("[DONE]"),
    ]  # fmt: skip
    events = [e for c in chunks for e in stream.feed(c)] + stream.finish()
    blocks = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert [(b["type"], b["id"], b["name"]) for b in blocks] == [("tool_use", "t1", "Bash")]
    sent = "".join(e["delta"].get("partial_json", "") for e in events
                   if e["type"] == "content_block_delta")  # fmt: skip
    assert json.loads(sent) == {"command": "rm -r build"}
