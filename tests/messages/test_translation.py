"""/v1/messages to an `openai` provider: translated both ways, streams synthesized in
Anthropic's event order with correct block indexes, metered like any call."""

from __future__ import annotations

import base64
import json

import httpx

from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import (
    NEEDS_SDK,
    OPENAI_ALIAS,
    OPENAI_KEY,
    OPENAI_MODEL,
    OPENAI_PRICES,
    MessagesBox,
    openai_chunk,
    usd_nanos,
)
from tests.support import TLS

pytestmark = NEEDS_SDK

PNG = base64.b64encode(b"\x89PNG fake").decode()
TOOLS = [{"name": "Read", "description": "Read a file", "input_schema": {
    "type": "object", "properties": {"path": {"type": "string"}}}}]  # fmt: skip
HISTORY = [
    {"role": "user", "content": [
        {"type": "text", "text": "Read a."},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
    ]},
    {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "hm", "signature": "sig"},
        {"type": "text", "text": "Reading."},
        {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a"}},
    ]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": [
            {"type": "text", "text": "file a"}]},
        {"type": "text", "text": "Now summarise."},
    ]},
]  # fmt: skip


def test_a_request_is_translated_to_chat_completions(fresh: MessagesBox) -> None:
    email, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="Summary.", prompt_tokens=1200, cached_tokens=1000,
                                 completion_tokens=9))  # fmt: skip
    before, _ = fresh.balance_nanos(email)
    message = fresh.client(key).messages.create(
        model=OPENAI_ALIAS, max_tokens=300, system="Be brief.", messages=HISTORY, tools=TOOLS,
        tool_choice={"type": "any"}, stop_sequences=["END"],
        metadata={"user_id": "u1"},
    )  # fmt: skip
    sent = fresh.openai_fake.requests[-1]
    assert sent.api_key == OPENAI_KEY
    assert sent.body["model"] == "gpt-5.4-mini"
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "Read a."},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]},
        {"role": "assistant", "content": "Reading.", "tool_calls": [
            {"id": "toolu_1", "type": "function",
             "function": {"name": "Read", "arguments": json.dumps({"path": "a"})}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "file a"},
        {"role": "user", "content": [{"type": "text", "text": "Now summarise."}]},
    ]  # fmt: skip
    assert sent.body["tools"][0]["function"]["parameters"] == TOOLS[0]["input_schema"]
    assert sent.body["tool_choice"] == "required" and sent.body["stop"] == ["END"]
    assert (sent.body["max_tokens"], sent.body["user"]) == (300, "u1")
    assert message.content[0].text == "Summary." and message.stop_reason == "end_turn"
    assert message.model == OPENAI_ALIAS  # as asked for (Anthropic echoes the model)
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (200, 1000)
    cost = usd_nanos((200, OPENAI_PRICES["in"]), (1000, OPENAI_PRICES["read"]),
                     (9, OPENAI_PRICES["out"]))  # fmt: skip
    after, held = fresh.balance_nanos(email)
    assert (before - after, held) == (cost, 0)
    row = fresh.usage_rows(email)[-1]
    assert (row["route"], row["cache_read_tokens"], row["model"]) == (
        "/v1/messages", 1000, OPENAI_MODEL)  # fmt: skip


def test_adaptive_thinking_keeps_the_effort_claude_code_asks_for(fresh: MessagesBox) -> None:
    """Claude Code sends `thinking: {type: adaptive}` with `output_config.effort` (its /effort
    setting): the effort is what the OpenAI model is asked for, not a fixed medium."""
    _, key = fresh.new_key()
    efforts = (("low", "low"), ("high", "high"), ("xhigh", "high"), ("max", "high"),
               (None, "medium"))  # fmt: skip
    for effort, expected in efforts:
        fresh.openai_fake.push(Reply(content="ok"))
        body = {"model": OPENAI_ALIAS, "max_tokens": 50, "thinking": {"type": "adaptive"},
                "messages": [{"role": "user", "content": "x"}]}  # fmt: skip
        if effort is not None:
            body["output_config"] = {"effort": effort}
        answer = httpx.post(f"{fresh.server.base_url}/v1/messages", json=body,
                            headers={"x-api-key": key}, timeout=30, verify=TLS)  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert fresh.openai_fake.requests[-1].body["reasoning_effort"] == expected, effort


def test_tool_calls_come_back_as_tool_use_blocks(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    calls = [{"name": "Read", "arguments": '{"path": "/etc/hosts"}'}]
    fresh.openai_fake.push(Reply(tool_calls=calls))
    message = fresh.client(key).messages.create(
        model=OPENAI_ALIAS, max_tokens=100, tools=TOOLS,
        messages=[{"role": "user", "content": "read hosts"}],
    )  # fmt: skip
    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "tool_use"
    assert (message.content[0].name, message.content[0].input) == ("Read", {"path": "/etc/hosts"})


def _events(text: str) -> list[dict]:
    blocks = [b for b in text.split("\n\n") if b.strip() and not b.startswith(":")]
    out = []
    for block in blocks:
        name, data = block.splitlines()[:2]
        event = json.loads(data.removeprefix("data: "))
        assert name.removeprefix("event: ") == event["type"]
        out.append(event)
    return out


def test_a_stream_is_synthesized_in_anthropics_order_with_indexes(fresh: MessagesBox) -> None:
    email, key = fresh.new_key()
    calls = [{"name": "Read", "arguments": '{"path": "a"}'},
             {"name": "Read", "arguments": '{"path": "b"}'}]  # fmt: skip
    fresh.openai_fake.push(Reply(tool_calls=calls, prompt_tokens=50, completion_tokens=20))
    body = {"model": OPENAI_ALIAS, "max_tokens": 100, "stream": True, "tools": TOOLS,
            "messages": [{"role": "user", "content": "read a and b"}]}  # fmt: skip
    answer = httpx.post(f"{fresh.server.base_url}/v1/messages", json=body,
                        headers={"x-api-key": key}, timeout=30, verify=TLS)  # fmt: skip
    events = _events(answer.text)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [e["index"] for e in starts] == [0, 1]
    opened: set[int] = set()
    for event in events:  # every delta/stop is for the block open at that moment
        if event["type"] == "content_block_start":
            assert not opened
            opened.add(event["index"])
        elif event["type"] == "content_block_delta":
            assert opened == {event["index"]}
        elif event["type"] == "content_block_stop":
            assert opened == {event["index"]}
            opened.clear()
    args = "".join(e["delta"]["partial_json"] for e in events
                   if e["type"] == "content_block_delta" and e["index"] == 1)  # fmt: skip
    assert json.loads(args) == {"path": "b"}
    final = events[-2]
    assert final["delta"]["stop_reason"] == "tool_use"
    assert final["usage"]["output_tokens"] == 20
    cost = usd_nanos((50, OPENAI_PRICES["in"]), (20, OPENAI_PRICES["out"]))
    assert fresh.usage_rows(email)[-1]["cost_nanos"] == cost


def test_the_sdk_stream_of_a_translated_answer(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="one two three"))
    with fresh.client(key).messages.stream(
        model=OPENAI_ALIAS, max_tokens=50, messages=[{"role": "user", "content": "count"}]
    ) as stream:
        text = stream.get_final_text()
        final = stream.get_final_message()
    assert text == "one two three"
    assert final.usage.output_tokens == 3 and final.stop_reason == "end_turn"


def test_the_sdk_stream_of_translated_reasoning_has_thinking_blocks_it_can_read(
    fresh: MessagesBox,
) -> None:
    """A thinking block carries a `signature` (a required field of the SDK's ThinkingBlock),
    streamed or not: an OpenAI upstream has none to give, so it is empty, as in the answer."""
    _, key = fresh.new_key()
    chunks = [openai_chunk({"role": "assistant", "reasoning_content": "Let me count."}),
              openai_chunk({"content": "one two"}), openai_chunk({}, finish="stop"),
              openai_chunk({}, usage={"prompt_tokens": 9, "completion_tokens": 6}),
              b"data: [DONE]\n\n"]  # fmt: skip
    fresh.openai_fake.push(Reply(raw=chunks))
    with fresh.client(key).messages.stream(
        model=OPENAI_ALIAS,
        max_tokens=2048,
        messages=[{"role": "user", "content": "count"}],
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        final = stream.get_final_message()
    thinking = final.content[0]
    assert (thinking.type, thinking.thinking, thinking.signature) == (
        "thinking",
        "Let me count.",
        "",
    )
    assert final.content[1].text == "one two"


def test_server_tools_are_refused_for_an_openai_model(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    body = {"model": OPENAI_ALIAS, "max_tokens": 10, "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}]}  # fmt: skip
    answer = httpx.post(f"{fresh.server.base_url}/v1/messages", json=body,
                        headers={"x-api-key": key}, timeout=30, verify=TLS)  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert fresh.openai_fake.requests == []


def test_a_role_anthropic_does_not_know_is_refused_not_sent_as_the_users(
    fresh: MessagesBox,
) -> None:
    """Anthropic refuses a role other than user and assistant (the box also takes Claude
    Code's mid-conversation system messages): an OpenAI-minded `tool` or `developer` message
    was sent to the model as the user's words."""
    _, key = fresh.new_key()
    for role in ("tool", "developer"):
        body = {"model": OPENAI_ALIAS, "max_tokens": 10, "messages": [
            {"role": "user", "content": "x"}, {"role": role, "content": "y"}]}  # fmt: skip
        answer = httpx.post(f"{fresh.server.base_url}/v1/messages", json=body,
                            headers={"x-api-key": key}, timeout=30, verify=TLS)  # fmt: skip
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["type"] == "invalid_request_error"
        assert role in answer.json()["error"]["message"]
    assert fresh.openai_fake.requests == []


def test_an_openai_refusal_is_the_answers_text_streamed_or_not(fresh: MessagesBox) -> None:
    """OpenAI hands a refused answer back in `refusal` with content null: the user reads it
    (it was dropped: an empty answer, which Claude Code asks again for without streaming)."""
    _, key = fresh.new_key()
    words = "I'm sorry, I can't help with that."
    stream = [openai_chunk({"role": "assistant", "content": None, "refusal": ""}),
              openai_chunk({"refusal": words[:8]}), openai_chunk({"refusal": words[8:]}),
              openai_chunk({}, "stop"), b"data: [DONE]\n\n"]  # fmt: skip
    fresh.openai_fake.push(Reply(raw=stream))
    asked = {"model": OPENAI_ALIAS, "max_tokens": 50,
             "messages": [{"role": "user", "content": "x"}]}  # fmt: skip
    with fresh.client(key).messages.stream(**asked) as streamed:
        final = streamed.get_final_message()
    assert [(b.type, getattr(b, "text", None)) for b in final.content] == [("text", words)]
    answer = {"id": "c2", "object": "chat.completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "finish_reason": "stop", "message": {
                  "role": "assistant", "content": None, "refusal": words}}],
              "usage": {"prompt_tokens": 5, "completion_tokens": 9}}  # fmt: skip
    fresh.openai_fake.push(Reply(raw=[json.dumps(answer).encode()],
                                 content_type="application/json"))  # fmt: skip
    message = fresh.client(key).messages.create(**asked)
    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [("text", words)]


def test_claude_codes_long_user_id_fits_openais_user(fresh: MessagesBox) -> None:
    """Claude Code's metadata.user_id is a JSON object of ~150 characters; OpenAI refuses a
    `user` past 64 (so every Claude Code call to an OpenAI model was a 400): it goes as its
    SHA-256, stable per id; a short id goes as sent."""
    _, key = fresh.new_key()
    long_id = json.dumps({"device_id": "a" * 64, "account_uuid": "", "session_id": "s" * 36})
    sent = []
    for user_id in (long_id, long_id, "u1"):
        fresh.openai_fake.push(Reply(content="ok"))
        fresh.client(key).messages.create(
            model=OPENAI_ALIAS, max_tokens=10, metadata={"user_id": user_id},
            messages=[{"role": "user", "content": "x"}],
        )  # fmt: skip
        sent.append(fresh.openai_fake.requests[-1].body["user"])
    assert len(sent[0]) == 64 and sent[0] == sent[1] and sent[2] == "u1"


def test_claude_codes_billing_line_stays_out_of_the_openai_prompt(fresh: MessagesBox) -> None:
    """Claude Code opens `system` with an attribution block (`x-anthropic-billing-header:
    cc_version=...; cch=...;`) whose hashes change per session, and in many versions per request:
    first in the prompt, it made every prefix new to an OpenAI-compatible server's prompt cache
    (no cache hit, every turn's input at the full price). It means nothing to the model and is
    left out; the rest of the system prompt goes as it was."""
    _, key = fresh.new_key()
    sent = []
    cached = {"type": "ephemeral"}
    for nonce in ("71fea", "0aaa9"):
        billing = f"x-anthropic-billing-header: cc_version=2.1.117.48f; cch={nonce};"
        system = [{"type": "text", "text": billing},
                  {"type": "text", "text": "You are Claude Code.", "cache_control": cached},
                  {"type": "text", "text": "Be brief."}]  # fmt: skip
        body = {"model": OPENAI_ALIAS, "max_tokens": 10, "system": system,
                "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
        sent.append(fresh.translated(key, body)["messages"][0])
    assert sent == [{"role": "system", "content": "You are Claude Code.\nBe brief."}] * 2


def test_a_pdf_a_tool_returned_reaches_the_openai_model(fresh: MessagesBox) -> None:
    """Claude Code's Read tool hands back a PDF as a document block inside the tool_result:
    it goes after the tool message as a file part, as images do (it was dropped silently, and
    the model answered about a file it never saw)."""
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(content="It is a menu."))
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
           "data": "JVBERi0xLjQgZmFrZQ=="}}  # fmt: skip
    result = {"type": "tool_result", "tool_use_id": "toolu_1",
              "content": [{"type": "text", "text": "PDF file read"}, pdf]}  # fmt: skip
    history = [*HISTORY[:2], {"role": "user", "content": [result]}]
    fresh.client(key).messages.create(model=OPENAI_ALIAS, max_tokens=50, messages=history)
    sent = fresh.openai_fake.requests[-1].body["messages"]
    assert sent[-2] == {"role": "tool", "tool_call_id": "toolu_1", "content": "PDF file read"}
    data = "data:application/pdf;base64,JVBERi0xLjQgZmFrZQ=="
    assert sent[-1] == {"role": "user", "content": [
        {"type": "file", "file": {"filename": "document.pdf", "file_data": data}}]}  # fmt: skip


def test_per_message_effort_is_the_effort_the_openai_model_is_asked_for(
    fresh: MessagesBox,
) -> None:
    """Claude Code 2.1.332 sets its effort per turn: a system message with `output_config`
    (Anthropic's per-message effort, content empty or not). It applies to the answer of the
    user turn it follows, or from the next user turn with new input (a turn of tool results
    alone is none); an effort-only system message carries no text to send."""
    _, key = fresh.new_key()
    low = {"role": "system", "content": [], "output_config": {"effort": "low"}}
    use = {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a"}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "file a"}
    cases = (
        ([{"role": "user", "content": "x"}, low], "low"),
        ([{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}, low,
          {"role": "user", "content": "z"}], "low"),
        ([{"role": "user", "content": "x"}, {"role": "assistant", "content": [use]},
          {"role": "user", "content": [result]}, low], "high"),
        ([{"role": "user", "content": "x"}, {**low, "content": "Be brief."}], "low"),
    )  # fmt: skip
    for messages, expected in cases:
        body = {"model": OPENAI_ALIAS, "max_tokens": 50, "thinking": {"type": "adaptive"},
                "output_config": {"effort": "high"}, "messages": messages,
                "tools": TOOLS}  # fmt: skip
        sent = fresh.translated(key, body)
        assert sent["reasoning_effort"] == expected, messages
        systems = [m["content"] for m in sent["messages"] if m["role"] == "system"]
        texts = [m["content"] for m in messages if m["role"] == "system" and m["content"]]
        assert systems == texts, systems


def test_deferred_tools_reach_the_openai_model_once_a_tool_result_loads_them(
    fresh: MessagesBox,
) -> None:
    """Claude Code 2.1.332 searches its own tools: deferred ones (`defer_loading`, among them a
    placeholder never to be called) stay out of the model's tools until its ToolSearch tool's
    result loads them by `tool_reference`; then they are tools like any other."""
    _, key = fresh.new_key()
    schema = {"type": "object", "properties": {}}
    tools = [*TOOLS, {"name": "ToolSearch", "input_schema": schema},
             {"name": "DeferredToolPlaceholder", "input_schema": schema, "defer_loading": True},
             {"name": "WebFetch", "input_schema": schema, "defer_loading": True}]  # fmt: skip
    body = {"model": OPENAI_ALIAS, "max_tokens": 50, "tools": tools,
            "messages": [{"role": "user", "content": "fetch it"}]}  # fmt: skip
    sent = fresh.translated(key, body)
    assert [t["function"]["name"] for t in sent["tools"]] == ["Read", "ToolSearch"]
    search = {"type": "tool_use", "id": "toolu_2", "name": "ToolSearch", "input": {}}
    loaded = {"type": "tool_result", "tool_use_id": "toolu_2",
              "content": [{"type": "tool_reference", "tool_name": "WebFetch"}]}  # fmt: skip
    body["messages"] += [{"role": "assistant", "content": [search]},
                         {"role": "user", "content": [loaded]}]  # fmt: skip
    sent = fresh.translated(key, body)
    assert [t["function"]["name"] for t in sent["tools"]] == ["Read", "ToolSearch", "WebFetch"]
    tool_messages = [m for m in sent["messages"] if m["role"] == "tool"]
    assert tool_messages and "WebFetch" in tool_messages[0]["content"]


def test_tools_all_deferred_send_no_empty_tools_array(fresh: MessagesBox) -> None:
    """Tools that are all deferred (none loaded yet) leave the OpenAI model no tool: the request
    carries no `tools` then, nor tool_choice or parallel_tool_calls, which need tools. An empty
    array is a 400 at OpenAI and DeepSeek ("empty array. Expected an array with minimum length
    1"), and parallel_tool_calls without tools one at OpenAI."""
    _, key = fresh.new_key()
    schema = {"type": "object", "properties": {}}
    body = {"model": OPENAI_ALIAS, "max_tokens": 50,
            "tools": [{"name": "WebFetch", "input_schema": schema, "defer_loading": True}],
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    sent = fresh.translated(key, body)
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(sent), sent


def test_tool_arguments_handed_back_keep_their_text_as_the_model_wrote_it(
    fresh: MessagesBox,
) -> None:
    """A tool call's input goes back to the openai model in UTF-8, as the model wrote it (and
    OpenAI keeps it): escaped, each CJK character was six of ASCII (about four times the
    tokens, charged on every later turn of a Claude Code session: a Write of a Chinese file)."""
    _, key = fresh.new_key()
    written = {"file_path": "/a.md", "content": "你好世界 😀"}
    call = {"type": "tool_use", "id": "toolu_1", "name": "Write", "input": written}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "写好了"}
    history = [{"role": "user", "content": "写文件"}, {"role": "assistant", "content": [call]},
               {"role": "user", "content": [result]}]  # fmt: skip
    sent = fresh.translated(key, {"model": OPENAI_ALIAS, "max_tokens": 50, "messages": history})
    arguments = sent["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert json.loads(arguments) == written and "你好世界 😀" in arguments
