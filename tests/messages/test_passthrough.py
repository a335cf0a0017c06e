"""/v1/messages to an `anthropic` provider: the body as sent, the answer as given, metered.

The real anthropic SDK talks to the box; the fake Anthropic upstream validates strictly and
records what reached it.
"""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest

from tests.fakes.anthropic_upstream import Reply, ToolUse, stream_events
from tests.messages.conftest import (
    ALIAS,
    MODEL,
    NEEDS_SDK,
    PRICES,
    PROVIDER_KEY,
    UPSTREAM_MODEL,
    MessagesBox,
    usd_nanos,
)
from tests.support import TLS, sdk_http

pytestmark = NEEDS_SDK

PDF = base64.b64encode(b"%PDF-1.4 fake").decode()
PNG = base64.b64encode(b"\x89PNG fake").decode()
RICH_BODY = {
    "model": ALIAS,
    "max_tokens": 2048,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "document", "source": {"type": "base64", "media_type":
                 "application/pdf", "data": PDF}, "cache_control": {"type": "ephemeral"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                 "data": PNG}},
                {"type": "text", "text": "Read the file."},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should read it.", "signature": "c2lnLTE="},
                {"type": "tool_use", "id": "toolu_01", "name": "Read", "input": {"path": "a"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "contents",
                 "cache_control": {"type": "ephemeral", "ttl": "1h"}},
            ],
        },
    ],
    "tools": [{"name": "Read", "description": "Read a file", "input_schema": {
        "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}],
    "tool_choice": {"type": "auto"},
    "metadata": {"user_id": "user_abc"},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
}  # fmt: skip


def post(
    box: MessagesBox, key: str, body: object, path: str = "/v1/messages", **headers: str
) -> httpx.Response:
    head = {"x-api-key": key, "anthropic-version": "2023-06-01", **headers}
    return httpx.post(f"{box.server.base_url}{path}?beta=true", json=body, headers=head,
                      timeout=30, verify=TLS)  # fmt: skip


def test_the_body_goes_upstream_as_sent_with_the_upstream_model_and_the_operators_key(
    fresh: MessagesBox,
) -> None:
    email, key = fresh.new_key()
    beta = "interleaved-thinking-2025-05-14,prompt-caching-2024-07-31"
    answer = post(fresh, key, RICH_BODY, **{"anthropic-beta": beta})
    assert answer.status_code == 200, answer.text
    sent = fresh.fake.requests[-1]
    assert sent.body == {**RICH_BODY, "model": UPSTREAM_MODEL}
    assert list(sent.body) == list(RICH_BODY)  # nothing reordered
    assert sent.headers["x-api-key"] == PROVIDER_KEY
    assert sent.headers["anthropic-beta"] == beta
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert key not in json.dumps(sent.headers)
    message = answer.json()
    assert message["type"] == "message" and message["content"][0]["type"] == "text"
    assert message["usage"]["input_tokens"] == 25  # Anthropic's own usage object
    assert fresh.usage_rows(email)[-1]["route"] == "/v1/messages"


def test_create_with_the_sdk_charges_cache_reads_and_writes_at_their_prices(
    fresh: MessagesBox,
) -> None:
    email, key = fresh.new_key()
    fresh.fake.script(Reply(text="Done.", input_tokens=100, output_tokens=40,
                            cache_read_input_tokens=5000, cache_creation_input_tokens=3000,
                            cache_creation_1h_tokens=1000))  # fmt: skip
    before, _ = fresh.balance_nanos(email)
    prompt = "A long, cached prompt. " * 400  # its bytes bound the 8,100 tokens reported
    raw = fresh.client(key).messages.with_raw_response.create(
        model=MODEL, max_tokens=512, messages=[{"role": "user", "content": prompt}]
    )
    message = raw.parse()
    assert message.content[0].text == "Done."
    assert message.usage.cache_read_input_tokens == 5000
    cost = usd_nanos((100, PRICES["in"]), (40, PRICES["out"]), (5000, PRICES["read"]),
                     (2000, PRICES["write"]), (1000, PRICES["write_1h"]))  # fmt: skip
    after, held = fresh.balance_nanos(email)
    assert (before - after, held) == (cost, 0)
    assert raw.headers["x-codelace-cost-usd"] == f"{cost / 1e9:.9f}".rstrip("0")
    row = fresh.usage_rows(email)[-1]
    assert (row["input_tokens"], row["output_tokens"]) == (8100, 40)
    assert (row["cache_read_tokens"], row["cache_write_tokens"]) == (5000, 3000)
    assert row["cache_write_1h_tokens"] == 1000 and row["cost_nanos"] == cost


@pytest.mark.parametrize("stream", [False, True])
def test_server_side_compaction_is_charged_its_own_sampling_too(
    fresh: MessagesBox, stream: bool
) -> None:
    """Compaction (context_management compact_*) samples the whole conversation once more in
    the same call; Anthropic bills that pass and reports it only in `usage.iterations`."""
    email, key = fresh.new_key()
    compaction = {"input_tokens": 1800, "output_tokens": 350, "cache_read_input_tokens": 0,
                  "cache_creation_input_tokens": 0}  # fmt: skip
    fresh.fake.script(Reply(text="Summarised.", input_tokens=230, output_tokens=10,
                            compaction=compaction))  # fmt: skip
    body = {"model": ALIAS, "max_tokens": 1000, "stream": stream,
            "context_management": {"edits": [{"type": "compact_20260112"}]},
            "messages": [{"role": "user", "content": "long talk " * 300}]}  # fmt: skip
    answer = post(fresh, key, body, **{"anthropic-beta": "compact-2026-01-12"})
    assert answer.status_code == 200, answer.text
    row = fresh.usage_rows(email)[-1]
    assert (row["input_tokens"], row["output_tokens"]) == (230 + 1800, 10 + 350)
    cost = usd_nanos((230 + 1800, PRICES["in"]), (10 + 350, PRICES["out"]))
    assert row["cost_nanos"] == cost
    assert fresh.fake.requests[-1].body["context_management"] == body["context_management"]


def test_stream_with_the_sdk_relays_every_event_and_charges_the_final_usage(
    fresh: MessagesBox,
) -> None:
    email, key = fresh.new_key()
    unknown = {"type": "future_event", "detail": {"x": 1}}
    reply = Reply(text="Streaming works fine.", thinking="Let me think.", output_tokens=33,
                  cache_read_input_tokens=700, extra_events=[unknown])  # fmt: skip
    fresh.fake.script(reply)
    before, _ = fresh.balance_nanos(email)
    with fresh.client(key).messages.stream(
        model=ALIAS, max_tokens=4096, messages=[{"role": "user", "content": "Hi"}],
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:  # fmt: skip
        final = stream.get_final_message()
    assert final.content[0].type == "thinking" and final.content[0].signature == reply.signature
    assert final.content[1].text == "Streaming works fine."
    assert final.usage.output_tokens == 33
    cost = usd_nanos((25, PRICES["in"]), (33, PRICES["out"]), (700, PRICES["read"]))
    after, held = fresh.balance_nanos(email)
    assert (before - after, held) == (cost, 0)
    assert fresh.usage_rows(email)[-1]["stream"] == 1


def test_the_raw_stream_relays_every_event_in_order_unknown_ones_included(
    fresh: MessagesBox,
) -> None:
    _, key = fresh.new_key()
    reply = Reply(text="abc def", extra_events=[{"type": "future_event", "detail": {"x": 1}}],
                  tool_uses=[ToolUse("toolu_9", "Read", {"path": "/a"})])  # fmt: skip
    fresh.fake.script(reply)
    body = {"model": MODEL, "max_tokens": 50, "stream": True,
            "messages": [{"role": "user", "content": "Hi"}]}  # fmt: skip
    answer = post(fresh, key, body)
    assert answer.headers["content-type"].startswith("text/event-stream")
    blocks = [b for b in answer.text.split("\n\n") if b.strip() and not b.startswith(":")]
    names = [b.splitlines()[0].removeprefix("event: ") for b in blocks]
    datas = [json.loads(b.splitlines()[1].removeprefix("data: ")) for b in blocks]
    assert names == [d["type"] for d in datas]
    upstream = stream_events(reply, UPSTREAM_MODEL)
    for event in upstream:
        if event["type"] == "message_start":
            event["message"]["model"] = MODEL  # the catalog id is shown, not the upstream name
            event["message"]["id"] = datas[0]["message"]["id"]  # the fake numbers each answer
    assert datas == upstream
    assert "[DONE]" not in answer.text


def test_max_tokens_above_the_balance_is_refused_before_the_upstream(fresh: MessagesBox) -> None:
    import anthropic

    _, key = fresh.new_key(credit_usd="0.001")
    with pytest.raises(anthropic.APIStatusError) as caught:
        fresh.client(key).messages.create(
            model=MODEL, max_tokens=64000, messages=[{"role": "user", "content": "Hi"}]
        )
    assert caught.value.status_code == 402
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    assert caught.value.body["error"]["type"] == "billing_error"  # type: ignore[index]
    assert fresh.fake.requests == []


def test_a_bad_key_is_the_sdks_authentication_error(fresh: MessagesBox) -> None:
    import anthropic

    with pytest.raises(anthropic.AuthenticationError) as caught:
        fresh.client("cl_" + "x" * 40).messages.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
        )
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    assert fresh.fake.requests == []


def test_the_bearer_header_works_like_x_api_key(fresh: MessagesBox) -> None:
    import anthropic

    _, key = fresh.new_key()
    client = anthropic.Anthropic(
        base_url=fresh.server.base_url,
        auth_token=key,
        max_retries=0,
        http_client=sdk_http(anthropic),
    )
    message = client.messages.create(
        model=ALIAS, max_tokens=10, messages=[{"role": "user", "content": "Hi"}]
    )
    assert message.content[0].text == "Hello!"
    assert "authorization" not in {k.lower() for k in fresh.fake.requests[-1].headers}


def test_an_error_event_before_any_content_is_retried_like_a_529(fresh: MessagesBox) -> None:
    email, key = fresh.new_key()
    fresh.fake.script(
        Reply(error_before_content=True, error_type="overloaded_error", error_message="busy"),
        Reply(text="Second try."),
    )
    with fresh.client(key).messages.stream(
        model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        text = stream.get_final_text()
    assert text == "Second try."
    assert len(fresh.fake.requests) == 2
    assert [r["status"] for r in fresh.usage_rows(email)] == ["ok"]


@pytest.mark.parametrize("streamed", [False, True])
def test_overloaded_on_every_try_is_a_503_overloaded_error(
    fresh: MessagesBox, streamed: bool
) -> None:
    """A 529 (or an overloaded error event before content) on every try: the contract's 503,
    in Anthropic's own shape with its own type, at no cost."""
    import anthropic

    email, key = fresh.new_key()
    before = fresh.balance_nanos(email)
    busy = (
        Reply(error_before_content=True, error_type="overloaded_error", error_message="busy")
        if streamed
        else Reply.error(529, "overloaded_error", "busy")
    )
    fresh.fake.script(*[busy] * 3)
    with pytest.raises(anthropic.APIStatusError) as caught:
        fresh.client(key).messages.create(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Hi"}],
            stream=streamed,
        )  # fmt: skip
    assert caught.value.status_code == 503
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "overloaded_error" and "busy" in body["error"]["message"]
    assert len(fresh.fake.requests) == 3 and fresh.balance_nanos(email) == before


def test_an_error_event_after_content_ends_the_stream_at_no_cost(fresh: MessagesBox) -> None:
    import anthropic

    email, key = fresh.new_key()
    fresh.fake.script(Reply(text="a long answer here", error_after_deltas=2,
                            error_type="overloaded_error", error_message="busy"))  # fmt: skip
    before, _ = fresh.balance_nanos(email)
    with (
        pytest.raises(anthropic.APIStatusError),
        fresh.client(key).messages.stream(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
        ) as stream,
    ):
        stream.until_done()
    assert fresh.balance_nanos(email) == (before, 0)
    assert len(fresh.fake.requests) == 1


@pytest.mark.parametrize(
    ("extra", "headers", "field"),
    [
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, {}, "web_search"),
        (  # a server-side inference on a dearer model (Opus), billed at its rates
            {
                "tools": [
                    {"type": "advisor_20260301", "name": "advisor", "model": "claude-opus-4-6"}
                ]
            },
            {"anthropic-beta": "advisor-tool-2026-03-01"},
            "advisor",
        ),
        ({"service_tier": "priority"}, {}, "service_tier"),
        ({"speed": "fast"}, {"anthropic-beta": "fast-mode-2026-02-01"}, "speed"),
        ({"inference_geo": "us"}, {}, "inference_geo"),
        (
            {"mcp_servers": [{"type": "url", "url": "https://mcp.example/sse", "name": "big"}]},
            {"anthropic-beta": "mcp-client-2025-04-04"},
            "mcp_servers",
        ),
        ({}, {"anthropic-beta": "context-1m-2025-08-07"}, "context-1m"),
        ({}, {"anthropic-beta": "other-2025-01-01, Context-1M-2025-08-07"}, "context-1m"),
        (  # server-side fallback: a declined request served by another model at its rates,
            # with its own max_tokens (past the hold) and speed (fast mode) per entry
            {"fallbacks": [{"model": "claude-opus-4-8", "max_tokens": 64000, "speed": "fast"}]},
            {"anthropic-beta": "server-side-fallback-2026-07-01"},
            "fallbacks",
        ),
        (
            {"fallbacks": "default"},
            {"anthropic-beta": "server-side-fallback-2026-07-01"},
            "fallbacks",
        ),  # the models Anthropic picks per refusal category
    ],
)
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_billed_extras_need_the_operators_permission(
    fresh: MessagesBox, extra: dict, headers: dict[str, str], field: str, path: str
) -> None:
    """Refused on count_tokens too: nothing is billed there, but the body goes to the
    operator's account as sent (an MCP server named in it is one Anthropic connects to)."""
    _, key = fresh.new_key()
    fresh.cli("providers", "update", "anth", "--no-allow-field", "context-1m")
    fresh.until_reloaded()  # else a snapshot read within the last half second still allows it
    try:
        body = {"model": MODEL, "max_tokens": 10,
                "messages": [{"role": "user", "content": "x"}], **extra}  # fmt: skip
        answer = post(fresh, key, body, path, **headers)
    finally:
        fresh.cli("providers", "update", "anth", "--allow-field", "context-1m")
        fresh.until_reloaded()  # Claude Code's tests send context-1m (2.1.197 does)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert field in answer.json()["error"]["message"]
    long_context = [
        f.strip() for f in headers.get("anthropic-beta", "").split(",") if "1M" in f.upper()
    ]
    assert all(f in answer.json()["error"]["message"] for f in long_context)  # as sent
    assert fresh.fake.requests == []


@pytest.mark.parametrize("stream", [False, True])
def test_anthropics_refusal_is_relayed_in_its_own_words(fresh: MessagesBox, stream: bool) -> None:
    """A 400 of Anthropic's reaches the client in Anthropic's words, with nothing before
    them: Claude Code acts on some by their exact words ("Invalid effort level": it asks
    again at a lower effort), which a prefix of the box's ("Anthropic API error 400:
    invalid_request_error: ...") hid from it."""
    email, key = fresh.new_key()
    fresh.fake.script(Reply.error(400, "invalid_request_error", "Invalid effort level"))
    body = {"model": MODEL, "max_tokens": 10, "stream": stream,
            "messages": [{"role": "user", "content": "x"}]}  # fmt: skip
    answer = post(fresh, key, body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == {"type": "invalid_request_error",
                                      "message": "Invalid effort level"}  # fmt: skip
    assert [r["cost_nanos"] for r in fresh.usage_rows(email)] == [0]


def test_a_stream_past_the_output_cap_is_cut_in_anthropics_shape(fresh: MessagesBox) -> None:
    email, key = fresh.new_key()
    fresh.fake.script(Reply(text="word " * 100, output_tokens=100))  # ignores max_tokens
    with fresh.client(key).messages.stream(
        model=MODEL, max_tokens=5, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "max_tokens"
    assert len(final.content[0].text) < len("word " * 100)
    row = fresh.usage_rows(email)[-1]
    assert (row["status"], row["error_code"]) == ("ok", "output_cap")
    assert row["cost_nanos"] <= row["hold_nanos"]


@pytest.mark.parametrize("route", ["/v1/messages", "/v1/chat/completions"])
def test_a_stream_left_before_its_content_began_is_charged_the_providers_count(
    fresh: MessagesBox, route: str
) -> None:
    """The client leaves while the box still waits for the first content event (Anthropic
    already sent message_start, with the input count): the box reads the stream on and
    charges what the provider reports, input from that first event included."""
    email, key = fresh.new_key()
    fresh.fake.script(Reply(text="Slow to start.", input_tokens=40, output_tokens=9,
                            delay_sec=0.4))  # fmt: skip
    before, _ = fresh.balance_nanos(email)
    body = {"model": ALIAS, "max_tokens": 64, "stream": True,
            "messages": [{"role": "user", "content": "Hi"}]}  # fmt: skip
    headers = {"authorization": f"Bearer {key}", "anthropic-version": "2023-06-01"}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(fresh.url + route, json=body, headers=headers, timeout=0.2, verify=TLS)
    for _ in range(200):
        rows = fresh.usage_rows(email)
        if rows and not fresh.balance_nanos(email)[1]:
            break
        time.sleep(0.05)
    row = rows[-1]
    assert (row["status"], row["input_tokens"], row["output_tokens"]) == ("abandoned", 40, 9)
    cost = usd_nanos((40, PRICES["in"]), (9, PRICES["out"]))
    assert fresh.balance_nanos(email) == (before - cost, 0)


@pytest.mark.parametrize("stream", [False, True])
def test_cache_writes_told_only_by_their_5m_and_1h_split_are_charged(
    fresh: MessagesBox, stream: bool
) -> None:
    """A usage whose cache writes come only as the `cache_creation` object (ephemeral_5m and
    ephemeral_1h input tokens, no flat cache_creation_input_tokens) was charged nothing for
    them: they are input tokens too, billed at the write prices."""
    email, key = fresh.new_key()
    fresh.fake.script(Reply(text="Done.", input_tokens=100, output_tokens=40,
                            cache_creation_input_tokens=3000, cache_creation_1h_tokens=1000,
                            flat_cache_creation=False))  # fmt: skip
    _bills_the_split(fresh, email, key, stream)


def _bills_the_split(fresh: MessagesBox, email: str, key: str, stream: bool) -> None:
    """A call whose scripted usage is 100 in, 40 out and writes of 2000 five-minute and 1000
    one-hour tokens is billed all of them at their prices, and its usage row says so."""
    before, _ = fresh.balance_nanos(email)
    body = {"model": MODEL, "max_tokens": 512, "stream": stream,
            "messages": [{"role": "user", "content": "A long, cached prompt. " * 200}]}  # fmt: skip
    answer = post(fresh, key, body)
    assert answer.status_code == 200, answer.text
    cost = usd_nanos((100, PRICES["in"]), (40, PRICES["out"]), (2000, PRICES["write"]),
                     (1000, PRICES["write_1h"]))  # fmt: skip
    assert fresh.balance_nanos(email) == (before - cost, 0)
    row = fresh.usage_rows(email)[-1]
    assert (row["input_tokens"], row["cache_write_tokens"], row["cache_write_1h_tokens"]) == (
        3100, 3000, 1000)  # fmt: skip
    assert row["cost_nanos"] == cost


@pytest.mark.parametrize("stream", [False, True])
def test_a_flat_cache_write_count_below_its_split_bills_the_split(
    fresh: MessagesBox, stream: bool
) -> None:
    """An Anthropic-compatible upstream that reports `cache_creation_input_tokens` 1000 beside
    a `cache_creation` split of 2000 five-minute and 1000 one-hour writes was billed the flat
    1000 (the 1-hour writes, clipped to it, and no 5-minute ones at all): the box charged less
    than the provider bills. The larger, consistent view is billed: the split's 3000."""
    email, key = fresh.new_key()
    fresh.fake.script(Reply(text="Done.", input_tokens=100, output_tokens=40,
                            cache_creation_input_tokens=3000, cache_creation_1h_tokens=1000,
                            flat_cache_creation_reported=1000))  # fmt: skip
    _bills_the_split(fresh, email, key, stream)
