"""/v1/messages against what a hostile user or a misconfigured client sends: two auth
headers, interleaved parallel tool calls from an OpenAI-compatible upstream, request fields
that would make the provider bill past the hold."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
import pytest

from tests.fakes.anthropic_upstream import Reply as AnthropicReply
from tests.fakes.openai_upstream import Reply
from tests.messages.conftest import (
    ALIAS,
    NEEDS_SDK,
    OPENAI_ALIAS,
    PRICES,
    PROVIDER_KEY,
    MessagesBox,
    openai_chunk,
    tool_call_piece,
    usd_nanos,
)
from tests.support import TLS

pytestmark = NEEDS_SDK
CATALOG_REFRESH_SEC = 1.5  # catalog changes apply within a second
BODY = {"model": ALIAS, "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]}


def post(box: MessagesBox, body: object, **headers: str) -> httpx.Response:
    return httpx.post(f"{box.server.base_url}/v1/messages", json=body, headers=headers,
                      timeout=30, verify=TLS)  # fmt: skip


def test_a_box_key_as_bearer_wins_over_a_foreign_x_api_key(fresh: MessagesBox) -> None:
    """Claude Code with ANTHROPIC_API_KEY (the user's own Anthropic key) still exported and
    ANTHROPIC_AUTH_TOKEN set to the box key sends both headers: the box key is the one."""
    _, key = fresh.new_key()
    answer = post(fresh, BODY, **{"x-api-key": "sk-ant-api03-users-own-key",
                                  "authorization": f"Bearer {key}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert fresh.fake.requests[-1].headers["x-api-key"] != "sk-ant-api03-users-own-key"


def test_two_different_box_keys_are_refused(fresh: MessagesBox) -> None:
    _, first = fresh.new_key()
    _, second = fresh.new_key()
    answer = post(fresh, BODY, **{"x-api-key": first, "authorization": f"Bearer {second}"})
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "authentication_error"
    assert "two different keys" in answer.json()["error"]["message"]
    assert fresh.fake.requests == []


@pytest.mark.parametrize("blank", [" ", "  ", "\t"])
def test_an_x_api_key_with_trailing_blanks_is_the_key(fresh: MessagesBox, blank: str) -> None:
    """A key pasted with a trailing blank into ANTHROPIC_API_KEY: Node sends the header as is,
    and its trailing blanks are no part of the value (RFC 9110; Anthropic takes it, so does
    the box's Bearer). Sent raw, as httpx would refuse such a header."""
    _, key = fresh.new_key()
    body = json.dumps(BODY).encode()
    head = (
        f"POST /v1/messages HTTP/1.1\r\nHost: box\r\nx-api-key: {key}{blank}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", fresh.server.port), timeout=30) as client:
        client.sendall(head.encode() + body)
        answer = b""
        while data := client.recv(65536):
            answer += data
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:400]


def test_a_missing_key_names_both_of_anthropics_headers(fresh: MessagesBox) -> None:
    answer = post(fresh, BODY)
    assert answer.status_code == 401
    assert "x-api-key" in answer.json()["error"]["message"]


# Two parallel tool calls whose headers come before their arguments (as some
# OpenAI-compatible servers stream them), after thinking and text.
INTERLEAVED = [
    openai_chunk({"role": "assistant", "reasoning_content": "think"}),
    openai_chunk({"content": "Reading both."}),
    openai_chunk(tool_call_piece(0, "call_a")),
    openai_chunk(tool_call_piece(1, "call_b")),
    openai_chunk(tool_call_piece(0, arguments='{"path": ')),
    openai_chunk(tool_call_piece(1, arguments='{"path": "b"}')),
    openai_chunk(tool_call_piece(0, arguments='"a"}')),
    openai_chunk({}, "tool_calls"),
    openai_chunk({}, usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}),
    b"data: [DONE]\n\n",
]


def test_interleaved_parallel_tool_calls_never_touch_a_closed_block(fresh: MessagesBox) -> None:
    """Claude Code fails with "Content block not found" on a delta for a block that was
    stopped (or not started): each event is for the one block open at that moment."""
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(raw=INTERLEAVED))
    body = {"model": OPENAI_ALIAS, "max_tokens": 100, "stream": True,
            "messages": [{"role": "user", "content": "read a and b"}]}  # fmt: skip
    answer = post(fresh, body, **{"x-api-key": key})
    events = [json.loads(line[6:]) for line in answer.text.splitlines()
              if line.startswith("data: ")]  # fmt: skip
    open_block: int | None = None
    inputs: dict[int, str] = {}
    for event in events:
        kind, index = event["type"], event.get("index")
        if kind == "content_block_start":
            assert open_block is None, event
            open_block = index
        elif kind == "content_block_delta":
            assert index == open_block, event
            inputs[index] = inputs.get(index, "") + event["delta"].get("partial_json", "")
        elif kind == "content_block_stop":
            assert index == open_block, event
            open_block = None
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [e["index"] for e in starts] == [0, 1, 2, 3]
    assert [e["content_block"].get("id") for e in starts[2:]] == ["call_a", "call_b"]
    assert json.loads(inputs[2]) == {"path": "a"} and json.loads(inputs[3]) == {"path": "b"}
    fresh.openai_fake.push(Reply(raw=INTERLEAVED))
    with fresh.client(key).messages.stream(
        model=OPENAI_ALIAS, max_tokens=100, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        final = stream.get_final_message()
    assert [b.input for b in final.content if b.type == "tool_use"] == [{"path": "a"},
                                                                        {"path": "b"}]  # fmt: skip


def _call(call_id: str, arguments: str, index: int | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"id": call_id, "type": "function",
                            "function": {"name": "Read", "arguments": arguments}}  # fmt: skip
    return {"tool_calls": [call if index is None else {"index": index, **call}]}


USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
WITHOUT_INDEX = [  # Gemini's OpenAI-compatible stream: one whole call per chunk, no index
    openai_chunk({"role": "assistant", "content": None}),
    openai_chunk(_call("call_a", '{"path": "a"}')), openai_chunk(_call("call_b", '{"path": "b"}')),
    openai_chunk({}, "tool_calls"), openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n",
]  # fmt: skip
SAME_INDEX = [  # a server that numbers every parallel call 0, its pieces after the header
    openai_chunk(_call("call_a", "", 0)), openai_chunk(tool_call_piece(0, arguments='{"path"')),
    openai_chunk(tool_call_piece(0, arguments=': "a"}')), openai_chunk(_call("call_b", "", 0)),
    openai_chunk(tool_call_piece(0, arguments='{"path": "b"}')),
    openai_chunk({}, "tool_calls"), openai_chunk({}, usage=USAGE), b"data: [DONE]\n\n",
]  # fmt: skip


@pytest.mark.parametrize("stream", [WITHOUT_INDEX, SAME_INDEX], ids=["no-index", "same-index"])
def test_parallel_calls_without_their_own_index_stay_apart(
    fresh: MessagesBox, stream: list[bytes]
) -> None:
    """Each call id is its own tool_use block (they were merged into one: the second call
    lost, the first one's input `{...}{...}`, which Claude Code refuses as invalid)."""
    _, key = fresh.new_key()
    fresh.openai_fake.push(Reply(raw=stream))
    with fresh.client(key).messages.stream(
        model=OPENAI_ALIAS, max_tokens=100, messages=[{"role": "user", "content": "x"}]
    ) as streamed:
        final = streamed.get_final_message()
    calls = [(b.id, b.input) for b in final.content if b.type == "tool_use"]
    assert calls == [("call_a", {"path": "a"}), ("call_b", {"path": "b"})]
    assert final.stop_reason == "tool_use"


PDF_DOCUMENT = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                "data": "JVBERi0xLjQgZmFrZQ=="}}  # fmt: skip
PNG_IMAGE = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
             "data": "iVBORw0KGgo="}}  # fmt: skip


@pytest.mark.parametrize(
    ("model", "credit", "media"),
    [
        (ALIAS, "0.2", PDF_DOCUMENT),  # a 20-byte PDF may have 100 pages of ~1,500 tokens each
        (OPENAI_ALIAS, "0.01", PNG_IMAGE),  # gpt-4o-mini counts 2,833 tokens for a 1-pixel PNG
        (ALIAS, "0.2", {"type": "tool_result", "tool_use_id": "t1", "content": [PNG_IMAGE]}),
    ],
)
def test_inline_media_reserves_the_context_window(
    fresh: MessagesBox, model: str, credit: str, media: dict[str, Any]
) -> None:
    """Tokens of inline media are not its bytes (pages, pixels): like chat, the hold covers the
    model's context window (200000 tokens by default), so a small balance cannot buy it."""
    _, key = fresh.new_key(credit)
    text = {"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]}
    assert post(fresh, text, **{"x-api-key": key}).status_code == 200
    fresh.fake.reset()
    fresh.openai_fake.reset()
    content = [media, {"type": "text", "text": "What is this?"}]
    messages: list[dict[str, Any]] = [{"role": "user", "content": content}]
    if media["type"] == "tool_result":
        call = {"type": "tool_use", "id": "t1", "name": "Read", "input": {}}
        messages = [text["messages"][0], {"role": "assistant", "content": [call]}, *messages]
    body = text | {"messages": messages}
    answer = post(fresh, body, **{"x-api-key": key})
    assert answer.status_code == 402, answer.text
    assert answer.json()["error"]["type"] == "billing_error"
    assert fresh.fake.requests == [] and fresh.openai_fake.requests == []


def test_the_free_values_of_priced_options_pass(fresh: MessagesBox) -> None:
    """`speed: standard` and `inference_geo: global` cost nothing extra (fast mode and a
    pinned region do, and are refused unless allowed)."""
    _, key = fresh.new_key()
    body = BODY | {"speed": "standard", "inference_geo": "global", "service_tier": "auto"}
    answer = post(fresh, body, **{"x-api-key": key})
    assert answer.status_code == 200, answer.text
    sent = fresh.fake.requests[-1].body
    assert (sent["speed"], sent["inference_geo"]) == ("standard", "global")


def test_every_anthropic_beta_header_is_forwarded_and_checked(fresh: MessagesBox) -> None:
    """Betas sent as several header lines are all forwarded (none silently off) and all
    checked for the billed ones."""
    _, key = fresh.new_key()
    url = f"{fresh.server.base_url}/v1/messages"
    betas = [("anthropic-beta", "interleaved-thinking-2025-05-14"),
             ("anthropic-beta", "prompt-caching-2024-07-31")]  # fmt: skip
    answer = httpx.post(
        url, json=BODY, headers=[("x-api-key", key), *betas], timeout=30, verify=TLS
    )
    assert answer.status_code == 200, answer.text
    sent = fresh.fake.requests[-1].headers["anthropic-beta"]
    assert sent == "interleaved-thinking-2025-05-14,prompt-caching-2024-07-31"
    fresh.cli("providers", "update", "anth", "--no-allow-field", "context-1m")
    try:
        long = [betas[0], ("anthropic-beta", "context-1m-2025-08-07")]
        time.sleep(CATALOG_REFRESH_SEC)  # the box saw the catalog just now: let it look again
        refused = httpx.post(
            url, json=BODY, headers=[("x-api-key", key), *long], timeout=30, verify=TLS
        )
    finally:
        fresh.cli("providers", "update", "anth", "--allow-field", "context-1m")
    assert refused.status_code == 400 and "context-1m" in refused.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_a_beta_flag_hiding_a_byte_that_is_no_utf8_is_refused(
    fresh: MessagesBox, path: str
) -> None:
    """`context-1m<0xE9>-2025-08-07`: the box read the byte as a lone surrogate, so the flag
    did not look like the long-context beta, and the upstream client left the surrogate out
    on the way: Anthropic got `context-1m-2025-08-07`, which the operator had not allowed."""
    _, key = fresh.new_key()
    fresh.cli("providers", "update", "anth", "--no-allow-field", "context-1m")
    fresh.until_reloaded()
    try:
        answer = httpx.post(f"{fresh.server.base_url}{path}", json=BODY, timeout=30, verify=TLS,
                            headers=[("x-api-key", key.encode()),
                                     ("anthropic-beta", b"context-1m\xe9-2025-08-07")])  # fmt: skip
    finally:
        fresh.cli("providers", "update", "anth", "--allow-field", "context-1m")
        fresh.until_reloaded()
    assert answer.status_code == 400, answer.text
    assert "anthropic-beta" in answer.json()["error"]["message"]
    assert fresh.fake.requests == []


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_the_long_context_beta_named_in_the_body_is_refused_unless_allowed(
    fresh: MessagesBox, path: str
) -> None:
    """Bedrock takes its beta flags in the body (`anthropic_beta`), and a gateway in front of
    it that speaks the Messages API passes the body on: `"anthropic_beta":
    ["context-1m-2025-08-07"]` turned on the long-context prices there (and its window, which
    media did not reserve) though the operator had not allowed context-1m. The box sends the
    body as it came, so it checks the body's flags as the header's."""
    _, key = fresh.new_key()
    fresh.cli("providers", "update", "anth", "--no-allow-field", "context-1m")
    fresh.until_reloaded()
    try:
        answers = [
            httpx.post(f"{fresh.server.base_url}{path}", json=BODY | {"anthropic_beta": flags},
                       headers={"x-api-key": key}, timeout=30, verify=TLS)
            for flags in (["prompt-caching-2024-07-31", "context-1m-2025-08-07"],
                          "Context-1M-2025-08-07")
        ]  # fmt: skip
    finally:
        fresh.cli("providers", "update", "anth", "--allow-field", "context-1m")
        fresh.until_reloaded()
    for answer in answers:
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert "anthropic_beta" in error["message"] and "context-1m" in error["message"]
    assert fresh.fake.requests == []


@pytest.mark.parametrize("route", ["/v1/messages", "/v1/chat/completions"])
def test_a_stream_cut_before_its_final_usage_bills_cache_tokens_at_their_prices(
    fresh: MessagesBox, route: str
) -> None:
    """message_start already says how much of the input was read from or written to the
    cache: a stream that ends without message_delta (cut at the output cap here) bills those
    tokens at the cache prices, not all at the input price."""
    email, key = fresh.new_key()
    fresh.fake.script(AnthropicReply(text="word " * 100, output_tokens=100, input_tokens=25,
                                     cache_read_input_tokens=500,
                                     cache_creation_input_tokens=40))  # fmt: skip
    body = BODY | {"max_tokens": 5, "stream": True}
    answer = httpx.post(f"{fresh.server.base_url}{route}", json=body, timeout=30,
                        headers={"authorization": f"Bearer {key}"}, verify=TLS)  # fmt: skip
    assert answer.status_code == 200, answer.text
    row = fresh.usage_rows(email)[-1]
    assert (row["error_code"], row["cache_read_tokens"], row["cache_write_tokens"]) == (
        "output_cap", 500, 40)  # fmt: skip
    cost = usd_nanos((25, PRICES["in"]), (500, PRICES["read"]), (40, PRICES["write"]),
                     (row["output_tokens"], PRICES["out"]))  # fmt: skip
    assert row["cost_nanos"] == cost


@pytest.mark.parametrize(
    "reply",
    [
        AnthropicReply(error_before_content=True, error_type="authentication_error",
                       error_message=f"invalid x-api-key: {PROVIDER_KEY}"),
        AnthropicReply(text="one two three four", error_after_deltas=1,
                       error_type="authentication_error",
                       error_message=f"invalid x-api-key: {PROVIDER_KEY}"),
    ],
    ids=["before-content", "after-content"],
)  # fmt: skip
def test_an_error_event_echoing_the_providers_key_never_shows_it(
    fresh: MessagesBox, reply: AnthropicReply
) -> None:
    """An upstream's error event inside a 200 stream that echoes the operator's key (the
    error status path masked it; the event was relayed as sent)."""
    _, key = fresh.new_key()
    fresh.fake.script(reply, reply, reply)  # the first try and both retries
    answer = post(fresh, {**BODY, "stream": True}, **{"x-api-key": key})
    assert b"invalid x-api-key" in answer.content
    assert PROVIDER_KEY not in answer.text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stop_sequences", "END"),  # a string: it was dropped, and the answer ran on past END
        ("stop_sequences", ["END", 5]),
        ("temperature", "0.5"),  # sent on as a string: the upstream's own 400
        ("top_p", True),
        ("temperature", 1.5),  # Anthropic's range is 0..1 (OpenAI's 0..2 would take it)
        ("temperature", -0.5),
        ("top_p", 2),
        ("tool_choice", "any"),  # a string: dropped, so tool use was not forced
        ("tool_choice", {"type": "required"}),
        ("tools", {"name": "get", "input_schema": {"type": "object"}}),  # an object: dropped
        ("metadata", "user-1"),
        ("metadata", {"user_id": 5}),
        ("thinking", "enabled"),
        ("thinking", {"type": "on"}),  # was taken for adaptive thinking
    ],
)
def test_a_translated_call_refuses_what_anthropic_refuses(
    fresh: MessagesBox, field: str, value: Any
) -> None:
    """Anthropic refuses these (400 invalid_request_error): toward an `openai` provider the
    box refuses them as well, before any money is held or the upstream is asked."""
    email, key = fresh.new_key()
    start = fresh.balance_nanos(email)
    answer = post(fresh, {**BODY, "model": OPENAI_ALIAS, field: value}, **{"x-api-key": key})
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["type"] == "error", error
    assert error["error"]["type"] == "invalid_request_error"
    assert field in error["error"]["message"]
    assert fresh.openai_fake.requests == []
    assert fresh.balance_nanos(email) == start


TOOL = {"name": "get", "input_schema": {"type": "object"}}


@pytest.mark.parametrize(
    "fields",
    [
        {"stop_sequences": []},
        {"temperature": 0, "stop_sequences": ["END"]},
        {"temperature": 1},
        {"top_p": 0.5},
        *({"tools": [TOOL], "tool_choice": {"type": kind}} for kind in ("auto", "any", "none")),
        {"tools": [TOOL], "tool_choice": {"type": "tool", "name": "get"}},
        {"tools": [TOOL], "tool_choice": {"type": "auto", "disable_parallel_tool_use": True}},
        {"metadata": {}},
        {"metadata": {"user_id": None}},
        {"metadata": {"user_id": "user-1"}},
        {"thinking": {"type": "disabled"}},
        {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048},
        {"thinking": {"type": "adaptive"}},
    ],
)
def test_a_translated_call_takes_what_anthropic_takes(
    fresh: MessagesBox, fields: dict[str, Any]
) -> None:
    """The shapes Anthropic accepts go through to the `openai` provider."""
    _, key = fresh.new_key()
    answer = post(fresh, {**BODY, "model": OPENAI_ALIAS, **fields}, **{"x-api-key": key})
    assert answer.status_code == 200, answer.text
    assert len(fresh.openai_fake.requests) == 1
