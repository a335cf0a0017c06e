"""OpenAI's newest answers (tests/fakes/openai_wire.py) through /v1/responses, passed through to
a provider added with `--responses-api`, and through /v1/chat/completions and the Responses
translation to chat: each read whole by the real openai SDK, the newest stream events relayed
as they came, and each charged exactly what its usage says at the model's prices (cache reads
and GPT-5.6's cache writes at theirs), the hold settled."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fakes import openai_wire as wire
from tests.fakes.hostile_upstream import SSE, Act, HostileUpstream
from tests.oaiwire.conftest import CHAT_MODEL, CREDIT_NANOS, NATIVE_MODEL, OaiBox, cost_nanos

pytestmark = pytest.mark.timeout(60)
ANSWERS = {"summary_and_citation": wire.summary_and_citation, "cache_write": wire.cache_write}


def assert_charged(box: OaiBox, email: str, usage: dict[str, Any], status: str = "ok") -> None:
    """The user paid exactly the usage at the model's prices, and nothing stays held."""
    balance, held = box.balance_nanos(email)
    assert held == 0
    assert CREDIT_NANOS - balance == cost_nanos(usage)
    assert box.usage_rows(email)[-1]["status"] == status
    assert box.open_holds() == 0


def assert_free(box: OaiBox, email: str) -> None:
    assert box.balance_nanos(email) == (CREDIT_NANOS, 0)
    assert box.usage_rows(email)[-1]["status"] != "ok"
    assert box.open_holds() == 0


def stream_native(box: OaiBox, key: str) -> tuple[list[Any], Any]:
    """The SDK's reading of a native stream: every event, and the terminal one's response."""
    with box.sdk(key).responses.stream(model=NATIVE_MODEL, input="Weather in Paris?",
                                       max_output_tokens=2000) as stream:  # fmt: skip
        events = list(stream)
    ends = [e for e in events if e.type in ("response.completed", "response.incomplete",
                                             "response.failed")]  # fmt: skip
    return events, ends[-1].response


@pytest.mark.parametrize("make", list(ANSWERS.values()), ids=list(ANSWERS))
def test_the_newest_stream_events_are_relayed_as_they_came(
    box: OaiBox, hostile: HostileUpstream, make: Any
) -> None:
    """Reasoning summary parts and deltas, the annotation event, `response.queued`, the
    obfuscation padding: relayed event by event in order with their sequence numbers, only the
    model renamed; the final usage carries the cache reads and writes as the upstream gave them,
    and `cost_usd`."""
    answer = make()
    email, key = box.new_user("5")
    hostile.push(Act(200, answer.sse(), content_type=SSE))
    body = {"model": NATIVE_MODEL, "input": "Weather in Paris?", "stream": True}
    with box.http(key) as http:
        text = http.post("/v1/responses", json=body).text
    relayed = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    sent = answer.numbered()
    assert [e["type"] for e in relayed] == [e["type"] for e in sent]
    for event in sent:
        if "response" in event:
            event["response"]["model"] = NATIVE_MODEL
    assert relayed[:-1] == sent[:-1]
    final = relayed[-1]["response"]
    assert final["usage"]["input_tokens_details"] == answer.usage["input_tokens_details"]
    assert final["usage"]["output_tokens_details"] == answer.usage["output_tokens_details"]
    assert final["usage"]["cost_usd"] == pytest.approx(cost_nanos(answer.usage) / 1e9)
    assert_charged(box, email, answer.usage)


@pytest.mark.parametrize("make", list(ANSWERS.values()), ids=list(ANSWERS))
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_native_answers_are_read_whole_and_billed_at_cache_prices(
    box: OaiBox, hostile: HostileUpstream, make: Any, stream: bool
) -> None:
    answer = make()
    email, key = box.new_user("5")
    if stream:
        hostile.push(Act(200, answer.sse(), content_type=SSE))
        _, final = stream_native(box, key)
    else:
        hostile.push(Act(200, [answer.whole()]))
        final = box.sdk(key).responses.create(model=NATIVE_MODEL, input="Weather in Paris?")
    assert final.output_text == answer.text
    assert final.model == NATIVE_MODEL
    summaries = [s.text for item in final.output if item.type == "reasoning"
                 for s in item.summary]  # fmt: skip
    assert "".join(summaries) == answer.summary
    assert (
        final.usage.input_tokens_details.cached_tokens
        == (answer.usage["input_tokens_details"]["cached_tokens"])
    )
    assert_charged(box, email, answer.usage)
    assert hostile.seen[-1].body["store"] is False


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_an_answer_cut_at_max_output_tokens_is_charged_its_usage(
    box: OaiBox, hostile: HostileUpstream, stream: bool
) -> None:
    """`response.incomplete` (max_output_tokens) after output: the SDK reads the incomplete
    response, and the provider's count is charged (its reasoning and cache reads included)."""
    answer = wire.incomplete()
    email, key = box.new_user("5")
    if stream:
        hostile.push(Act(200, answer.sse(), content_type=SSE))
        _, final = stream_native(box, key)
    else:
        hostile.push(Act(200, [answer.whole()]))
        final = box.sdk(key).responses.create(model=NATIVE_MODEL, input="Weather in Paris?",
                                              max_output_tokens=2000)  # fmt: skip
    assert final.status == "incomplete"
    assert final.incomplete_details.reason == "max_output_tokens"
    assert final.output_text == answer.text
    assert_charged(box, email, answer.usage)


@pytest.mark.parametrize("frames", [wire.failed_midway, wire.error_midway],
                         ids=["response.failed", "error"])  # fmt: skip
def test_a_failure_after_output_ends_the_stream_failed_and_costs_nothing(
    box: OaiBox, hostile: HostileUpstream, frames: Any
) -> None:
    """`response.failed` or an `error` event after the text began: the SDK's stream ends with
    `response.failed` (the one Codex acts on), the upstream's error code in it; a failed call
    costs nothing (the contract), the hold is released."""
    email, key = box.new_user("5")
    hostile.push(Act(200, frames(), content_type=SSE))
    events, final = stream_native(box, key)
    assert final.status == "failed"
    assert final.error.code == "server_error"
    assert any(e.type == "response.output_text.delta" for e in events)
    assert_free(box, email)


CHAT_USAGES = {"cache_reads": wire.chat_usage(),
               "cache_writes": wire.chat_usage(cached=0, writes=1900)}  # fmt: skip


@pytest.mark.parametrize("name", list(CHAT_USAGES))
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_chat_usage_details_are_billed_at_their_prices(
    box: OaiBox, hostile: HostileUpstream, name: str, stream: bool
) -> None:
    used = CHAT_USAGES[name]
    email, key = box.new_user("5")
    hostile.push(Act(200, wire.chat_sse(used), content_type=SSE) if stream
                 else Act(200, [wire.chat_body(used)]))  # fmt: skip
    client = box.sdk(key).chat.completions
    args: dict[str, Any] = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        chunks = list(client.create(**args, stream=True, stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        shown = chunks[-1].usage
    else:
        answer = client.create(**args)
        text, shown = answer.choices[0].message.content, answer.usage
    assert text == wire.CHAT_TEXT
    assert (
        shown.prompt_tokens_details.cached_tokens == used["prompt_tokens_details"]["cached_tokens"]
    )
    assert shown.completion_tokens_details.reasoning_tokens == 192
    assert_charged(box, email, used)
    row = box.usage_rows(email)[-1]
    details = used["prompt_tokens_details"]
    assert (row["cache_read_tokens"], row["cache_write_tokens"]) == (
        details["cached_tokens"],
        details.get("cache_write_tokens", 0),
    )


@pytest.mark.parametrize("name", list(CHAT_USAGES))
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
def test_translated_responses_show_and_bill_the_chat_usage_details(
    box: OaiBox, hostile: HostileUpstream, name: str, stream: bool
) -> None:
    """/v1/responses to a chat upstream: the chat usage's cache reads, cache writes and
    reasoning tokens become the response's usage details, each billed at its price."""
    used = CHAT_USAGES[name]
    email, key = box.new_user("5")
    hostile.push(Act(200, wire.chat_sse(used), content_type=SSE) if stream
                 else Act(200, [wire.chat_body(used)]))  # fmt: skip
    client = box.sdk(key).responses
    if stream:
        with client.stream(model=CHAT_MODEL, input="hi") as events:
            final = events.get_final_response()
    else:
        final = client.create(model=CHAT_MODEL, input="hi")
    assert final.output_text == wire.CHAT_TEXT
    details = used["prompt_tokens_details"]
    assert final.usage.input_tokens_details.cached_tokens == details["cached_tokens"]
    assert final.usage.output_tokens_details.reasoning_tokens == 192
    assert (final.usage.model_extra or {}).get("cost_usd") == pytest.approx(cost_nanos(used) / 1e9)
    assert_charged(box, email, used)
