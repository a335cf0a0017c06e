"""Anthropic's current wire features as an `anthropic` upstream answers them, through the three
ingress routes and the real SDKs: each documented answer (tests/fakes/anthropic_wire.py) is read
whole by the client (no crash, no stream left hanging), translated sensibly (text, tool calls,
finish reasons, thinking where the route has a place for it), and charged exactly what its usage
says at the model's prices (5-minute and 1-hour cache writes apart), the hold settled."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.anthwire.conftest import MAX_TOKENS, MODEL, WireBox, cost_nanos
from tests.fakes import anthropic_wire as wire
from tests.fakes.hostile_upstream import SSE, Act, HostileUpstream

pytestmark = pytest.mark.timeout(60)
HELLO = [{"role": "user", "content": "hi"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"location": {"type": "string"}}}}}]  # fmt: skip


def _messages(box: WireBox, key: str, stream: bool) -> dict[str, Any]:
    client = box.anthropic(key)
    args: dict[str, Any] = {"model": MODEL, "max_tokens": MAX_TOKENS, "messages": HELLO}
    if stream:
        with client.messages.stream(**args) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**args)
    blocks = [block.model_dump() for block in message.content]
    return {"text": "".join(b["text"] for b in blocks if b["type"] == "text"),
            "calls": [{"id": b["id"], "name": b["name"], "input": b["input"]}
                      for b in blocks if b["type"] == "tool_use"],
            "finish": message.stop_reason, "blocks": blocks,
            "thinking": "".join(b.get("thinking", "") for b in blocks)}  # fmt: skip


def _chat(box: WireBox, key: str, stream: bool) -> dict[str, Any]:
    client = box.sdk(key)
    args: dict[str, Any] = {"model": MODEL, "max_tokens": MAX_TOKENS, "messages": HELLO,
                            "tools": TOOLS}  # fmt: skip
    if not stream:
        choice = client.chat.completions.create(**args).choices[0]
        extra = choice.message.model_extra or {}
        calls = [{"id": c.id, "name": c.function.name, "input": json.loads(c.function.arguments)}
                 for c in choice.message.tool_calls or []]  # fmt: skip
        return {"text": choice.message.content or "", "calls": calls,
                "finish": choice.finish_reason,
                "thinking": extra.get("reasoning_content") or ""}  # fmt: skip
    text, thinking, finish, calls = "", "", None, {}
    chunks = client.chat.completions.create(**args, stream=True,
                                            stream_options={"include_usage": True})  # fmt: skip
    for chunk in chunks:
        for choice in chunk.choices:
            text += choice.delta.content or ""
            thinking += (choice.delta.model_extra or {}).get("reasoning_content") or ""
            finish = choice.finish_reason or finish
            for call in choice.delta.tool_calls or []:
                seen = calls.setdefault(call.index, {"id": call.id, "name": "", "args": ""})
                seen["name"] += call.function.name or ""
                seen["args"] += call.function.arguments or ""
    listed = [{"id": c["id"], "name": c["name"], "input": json.loads(c["args"])}
              for _, c in sorted(calls.items())]  # fmt: skip
    return {"text": text, "calls": listed, "finish": finish, "thinking": thinking}


def _responses(box: WireBox, key: str, stream: bool) -> dict[str, Any]:
    client = box.sdk(key)
    tool = {"type": "function", "name": "get_weather",
            "parameters": TOOLS[0]["function"]["parameters"]}  # fmt: skip
    args: dict[str, Any] = {"model": MODEL, "max_output_tokens": MAX_TOKENS, "input": "hi",
                            "tools": [tool]}  # fmt: skip
    if stream:  # the SDK's get_final_response() wants response.completed, not .incomplete
        with client.responses.stream(**args) as events:
            ends = [e.response for e in events if e.type in ("response.completed",
                    "response.incomplete", "response.failed")]  # fmt: skip
        (response,) = ends
        if response.status == "failed":
            raise RuntimeError(f"response.failed: {response.error}")
    else:
        response = client.responses.create(**args)
    calls = [{"id": item.call_id, "name": item.name, "input": json.loads(item.arguments)}
             for item in response.output if item.type == "function_call"]  # fmt: skip
    thinking = "".join(part.text for item in response.output if item.type == "reasoning"
                       for part in item.content or [])  # fmt: skip
    details = response.incomplete_details
    finish = details.reason if details else response.status
    return {"text": response.output_text, "calls": calls, "finish": finish, "thinking": thinking}


CALLERS = {"messages": _messages, "chat": _chat, "responses": _responses}
CASES = [(route, stream) for route in CALLERS for stream in (True, False)]
IDS = [f"{route}-{'stream' if stream else 'whole'}" for route, stream in CASES]


def call(box: WireBox, hostile: HostileUpstream, answer: wire.Wire, route: str,
         stream: bool) -> tuple[dict[str, Any], str]:  # fmt: skip
    """The client's reading of one answer through `route`, and the user's email."""
    email, key = box.new_user("5")
    if stream:
        hostile.push(Act(200, answer.sse(), content_type=SSE))
    else:
        hostile.push(Act(200, [answer.body()]))
    return CALLERS[route](box, key, stream), email


def assert_charged(box: WireBox, email: str, usage: dict[str, Any], credit_usd: int = 5) -> None:
    """The user paid exactly the usage at the model's prices, and nothing stays held."""
    balance, held = box.balance_nanos(email)
    assert held == 0
    assert credit_usd * 1_000_000_000 - balance == cost_nanos(usage)
    row = box.usage_rows(email)[-1]
    assert row["status"] == "ok", row
    assert box.open_holds() == 0


@pytest.mark.parametrize(("route", "stream"), CASES, ids=IDS)
def test_web_search_blocks_and_citations(box: WireBox, hostile: HostileUpstream, route: str,
                                         stream: bool) -> None:  # fmt: skip
    answer = wire.web_search()
    seen, email = call(box, hostile, answer, route, stream)
    assert seen["text"].replace(".Here", ". Here") == answer.text.replace(".Here", ". Here")
    assert seen["calls"] == []  # the server's own search is no call for the client to make
    assert seen["finish"] in ("end_turn", "stop", "completed")
    assert_charged(box, email, answer.usage)


@pytest.mark.parametrize(("route", "stream"), CASES, ids=IDS)
def test_thinking_redacted_and_cache_writes_5m_and_1h(
    box: WireBox, hostile: HostileUpstream, route: str, stream: bool
) -> None:
    answer = wire.thinking_cached()
    seen, email = call(box, hostile, answer, route, stream)
    assert seen["text"] == answer.text
    assert seen["thinking"] == answer.thinking
    assert_charged(box, email, answer.usage)
    row = box.usage_rows(email)[-1]
    assert (row["cache_read_tokens"], row["cache_write_tokens"]) == (1000, 3000)


FINISHES = {  # route -> what the client reads for a stop reason (a refusal on Responses: a
    # completed response with a refusal part, as OpenAI's; test_anthropic_refusal.py)
    "refusal": {"messages": "refusal", "chat": "content_filter", "responses": "completed"},
    "refusal_before_output": {"messages": "refusal", "chat": "content_filter",
                              "responses": "completed"},
    "pause_turn": {"messages": "pause_turn", "chat": "stop", "responses": "completed"},
    "model_context_window_exceeded": {"messages": "model_context_window_exceeded",
                                      "chat": "length", "responses": "max_output_tokens"},
}  # fmt: skip
STOPS = {"refusal": wire.refusal, "refusal_before_output": wire.refusal_before_output,
         "pause_turn": wire.pause_turn,
         "model_context_window_exceeded": wire.context_window_exceeded}  # fmt: skip


@pytest.mark.parametrize("stop", list(STOPS))
@pytest.mark.parametrize(("route", "stream"), CASES, ids=IDS)
def test_stop_reasons(box: WireBox, hostile: HostileUpstream, route: str, stream: bool,
                      stop: str) -> None:  # fmt: skip
    answer = STOPS[stop]()
    seen, email = call(box, hostile, answer, route, stream)
    assert seen["text"] == answer.text
    assert seen["calls"] == []
    assert seen["finish"] == FINISHES[stop][route]
    assert_charged(box, email, answer.usage)


@pytest.mark.parametrize(("route", "stream"), CASES, ids=IDS)
def test_unknown_blocks_and_events_keep_the_tool_call_whole(
    box: WireBox, hostile: HostileUpstream, route: str, stream: bool
) -> None:
    answer = wire.unknown_blocks()
    seen, email = call(box, hostile, answer, route, stream)
    assert seen["text"] == answer.text
    assert seen["calls"] == answer.tool_calls
    assert seen["finish"] in ("tool_use", "tool_calls", "completed")
    assert_charged(box, email, answer.usage)


@pytest.mark.parametrize("route", list(CALLERS))
def test_an_overloaded_error_mid_stream_ends_the_stream_and_costs_nothing(
    box: WireBox, hostile: HostileUpstream, route: str
) -> None:
    """Anthropic's `overloaded_error` event after the text began: the client's stream ends with
    its dialect's error (the SDKs raise), nothing is charged and the hold is released."""
    import anthropic
    import openai

    email, key = box.new_user("5")
    hostile.push(Act(200, wire.overloaded_midway().sse(), content_type=SSE))
    with pytest.raises((anthropic.APIError, openai.APIError, RuntimeError)) as caught:
        CALLERS[route](box, key, True)
    assert "verloaded" in str(caught.value), caught.value
    assert box.balance_nanos(email) == (5_000_000_000, 0)
    assert box.usage_rows(email)[-1]["status"] != "ok"
    assert box.open_holds() == 0


SERVER_TOOLS = [
    {"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]},
    {"tools": [{"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 2}]},
    {
        "mcp_servers": [{"type": "url", "url": "https://mcp.example/sse", "name": "docs"}],
        "tools": [{"type": "mcp_toolset", "mcp_server_name": "docs"}],
        "betas": ["mcp-client-2025-11-20"],
    },
]


@pytest.mark.parametrize("tool", SERVER_TOOLS, ids=["web_search", "web_fetch", "mcp_server"])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_a_server_tools_results_are_held_for(
    box: WireBox, hostile: HostileUpstream, tool: dict[str, Any], stream: bool
) -> None:
    """Where the operator allowed a server tool, what it brings into the context (search
    results, a fetched page) is billed as input the request does not show, and each turn of
    the server's loop reads the context again: the doc's search of a 2,679-token prompt bills
    10,682 input tokens (the sum of its turns). Like media of unknown size, it reserves the
    model's context window, once for each turn of the loop after the first ($5.4 at $3/1M)."""
    email, key = box.new_user("20")
    answer = wire.web_search(prompt_tokens=2679, input_tokens=10682)
    hostile.push(Act(200, answer.sse(), content_type=SSE) if stream else
                 Act(200, [answer.body()]))  # fmt: skip
    args = {"model": MODEL, "max_tokens": 600, "messages": HELLO, **tool}  # 510 used
    client = box.anthropic(key).beta
    if stream:
        with client.messages.stream(**args) as events:
            events.get_final_message()
    else:
        client.messages.create(**args)
    assert_charged(box, email, answer.usage, credit_usd=20)


@pytest.mark.parametrize(("route", "stream"), CASES, ids=IDS)
def test_interleaved_thinking_between_tool_calls(
    box: WireBox, hostile: HostileUpstream, route: str, stream: bool
) -> None:
    answer = wire.interleaved()
    seen, email = call(box, hostile, answer, route, stream)
    assert seen["calls"] == answer.tool_calls
    assert seen["thinking"] == answer.thinking
    assert seen["finish"] in ("tool_use", "tool_calls", "completed")
    assert_charged(box, email, answer.usage)


@pytest.mark.parametrize(
    "thread",
    [
        {"type": "create"},
        {"type": "continue", "previous_message_id": "msg_01G8kFhKxXj9rH1J7vL2q3A"},
    ],
    ids=["create", "continue"],
)
def test_server_held_threads_are_refused(
    box: WireBox, hostile: HostileUpstream, thread: dict[str, Any]
) -> None:
    """Anthropic's message threads (`thread`, beta message-threads-2026-08-12) keep the
    conversation on the operator's account and replay it as input the body does not show: a
    continued thread bills its whole history past the hold, and any user who learns a message
    id could continue another's conversation. The box is stateless, as for the Responses API's
    previous_response_id: a 400 naming the field, nothing sent, nothing charged."""
    import anthropic

    email, key = box.new_user("5")
    with pytest.raises(anthropic.BadRequestError) as caught:
        box.anthropic(key).beta.messages.create(
            model=MODEL, max_tokens=100, messages=HELLO, thread=thread,  # type: ignore[arg-type]
            betas=["message-threads-2026-08-12"],
        )  # fmt: skip
    error = caught.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error"
    assert "thread" in caught.value.message and "stateless" in caught.value.message
    # what the SDKs' thread helpers read to send the turn again whole, without `thread`
    assert error["details"] == {"error_code": "thread_unsupported_request",
                                "unsupported": ["thread"]}  # fmt: skip
    assert hostile.seen == []
    assert box.balance_nanos(email) == (5_000_000_000, 0)


@pytest.mark.parametrize(
    "make", [wire.web_search, wire.thinking_cached, wire.unknown_blocks, wire.refusal],
    ids=["web_search", "thinking", "unknown_blocks", "refusal"],
)  # fmt: skip
def test_the_messages_pass_through_relays_every_event_as_it_came(
    box: WireBox, hostile: HostileUpstream, make: Any
) -> None:
    """On /v1/messages each event reaches the client as Anthropic sent it (unknown event and
    block types, citations, signatures, stop_details, container, context_management), only the
    model named as the client asked."""
    answer = make()
    email, key = box.new_user("5")
    hostile.push(Act(200, answer.sse(), content_type=SSE))
    body = {"model": MODEL, "max_tokens": MAX_TOKENS, "messages": HELLO, "stream": True}
    with box.http(key) as http:
        text = http.post("/v1/messages", json=body, headers={"x-api-key": key}).text
    relayed = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    sent = json.loads(json.dumps(answer.events))
    sent[0]["message"]["model"] = MODEL
    assert relayed == sent
    assert_charged(box, email, answer.usage)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_a_fallback_served_answer_is_charged_its_top_level_usage_once(
    box: WireBox, hostile: HostileUpstream, stream: bool
) -> None:
    """Where the operator allowed `fallbacks`, the serving hop's `fallback_message` iteration
    stands in place of a `message` one: its tokens are in the top-level counts already, unlike
    a compaction's, and are not charged a second time."""
    email, key = box.new_user("5")
    answer = wire.served_by_fallback()
    hostile.push(Act(200, answer.sse(), content_type=SSE) if stream else
                 Act(200, [answer.body()]))  # fmt: skip
    args = {"model": MODEL, "max_tokens": MAX_TOKENS, "messages": HELLO,
            "fallbacks": [{"model": "claude-opus-4-8"}],
            "betas": ["server-side-fallback-2026-07-01"]}  # fmt: skip
    client = box.anthropic(key)
    if stream:
        with client.beta.messages.stream(**args) as events:
            final = events.get_final_message()
    else:
        final = client.beta.messages.create(**args)
    assert final.content[-1].text == answer.text  # type: ignore[union-attr]
    assert_charged(box, email, answer.usage)


def test_a_fallbacks_own_max_tokens_is_held_to_the_reserved_cap(
    box: WireBox, hostile: HostileUpstream
) -> None:
    """A `fallbacks` entry may set its own max_tokens in place of the request's: held to what
    was reserved like the request's own, even where the operator allowed fallbacks."""
    _, key = box.new_user("5")
    hostile.push(Act(200, [wire.served_by_fallback().body()]))
    fallbacks: Any = [{"model": "claude-opus-4-8", "max_tokens": 64000},
                      {"model": "claude-sonnet-5", "max_tokens": 50},
                      {"model": "claude-haiku-5"}]  # fmt: skip
    box.anthropic(key).beta.messages.create(
        model=MODEL, max_tokens=MAX_TOKENS, messages=HELLO, fallbacks=fallbacks,
        betas=["server-side-fallback-2026-07-01"],
    )  # fmt: skip
    sent = hostile.seen[-1].body
    assert sent["max_tokens"] == MAX_TOKENS
    assert sent["fallbacks"] == [{"model": "claude-opus-4-8", "max_tokens": MAX_TOKENS},
                                 {"model": "claude-sonnet-5", "max_tokens": 50},
                                 {"model": "claude-haiku-5"}]  # fmt: skip


def test_a_fallbacks_own_fast_mode_needs_the_operators_permission(
    box: WireBox, hostile: HostileUpstream
) -> None:
    """A `fallbacks` entry may also set `speed`: fast mode there is premium-priced as at the
    top level, so it needs `speed` allowed too, even where fallbacks are."""
    import anthropic

    email, key = box.new_user("5")
    fallbacks: Any = [{"model": "claude-opus-4-8", "speed": "fast"}]
    with pytest.raises(anthropic.BadRequestError) as caught:
        box.anthropic(key).beta.messages.create(
            model=MODEL, max_tokens=100, messages=HELLO, fallbacks=fallbacks,
            betas=["server-side-fallback-2026-07-01"],
        )  # fmt: skip
    assert "speed is not allowed" in caught.value.message
    assert hostile.seen == []
    assert box.balance_nanos(email) == (5_000_000_000, 0)


def test_the_sdks_tool_runner_goes_on_whole_without_a_thread(
    box: WireBox, hostile: HostileUpstream
) -> None:
    """The anthropic SDK's tool runner asks for a message thread first; told the box cannot
    hold one, it sends every turn whole without `thread`, and the tool loop runs through."""
    from anthropic import beta_tool

    @beta_tool
    def get_weather(location: str) -> str:
        """The weather at a place."""
        return "Sunny."

    _, key = box.new_user("5")
    hostile.push(Act(200, [wire.unknown_blocks().body()]),
                 Act(200, [wire.context_window_exceeded().body()]))  # fmt: skip
    runner = box.anthropic(key).beta.messages.tool_runner(
        model=MODEL, max_tokens=MAX_TOKENS, messages=HELLO, tools=[get_weather]
    )
    final = runner.until_done()
    assert final.content[0].text == "The long answer"  # type: ignore[union-attr]
    assert [seen.body.get("thread") for seen in hostile.seen] == [None, None]
    history = hostile.seen[-1].body["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "user"]
    assert history[2]["content"][0]["type"] == "tool_result"
