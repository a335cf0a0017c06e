"""Fields that make the provider bill beyond the model's price (issue 20, item 4): refused with a
400 naming the field until the operator allows it for the provider, then passed through as
sent; ordinary vendor parameters pass without asking."""

from __future__ import annotations

import time
from typing import Any

import openai
import pytest

from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.gateway.conftest import IN_PRICE, MODEL, NANOS, OUT_PRICE, Box, BoxFactory, cost_nanos

pytestmark = pytest.mark.timeout(60)
HELLO = [{"role": "user", "content": "Say hello"}]
ROUTES_RELOAD_SEC = 0.6  # a serve process sees a catalog change within 0.5 s
BILLED: dict[str, Any] = {
    "models": ["openai/gpt-4o", "anthropic/claude-opus-4"],
    "route": "fallback",
    "plugins": [{"id": "web", "max_results": 5}],
    "provider": {"order": ["OpenAI"], "allow_fallbacks": True},
    "transforms": ["middle-out"],
    "web_search_options": {"search_context_size": "high"},
    "service_tier": "priority",
    "modalities": ["text", "audio"],
    "audio": {"voice": "alloy", "format": "wav"},
    # LiteLLM's request-level fallbacks (other models, at their prices), and Anthropic's
    # server-side fallback on a front of Claude that passes it on
    "fallbacks": ["anthropic/claude-opus-4"],
    # the same from a LiteLLM proxy's router, per request: another model group when the prompt
    # is past the window or refused (its Router pops both from the call's kwargs), and
    # litellm.completion's own model-to-model map for the first
    "context_window_fallbacks": [{"gpt-4o-mini": ["gpt-4.5-preview"]}],
    "content_policy_fallbacks": [{"gpt-4o-mini": ["anthropic/claude-opus-4"]}],
    "context_window_fallback_dict": {"gpt-4o-mini": "gpt-4.5-preview"},
    # Alibaba Cloud Model Studio's (DashScope's) compatible mode takes its own top-level flags:
    # web search (a fee per search, its results put into the prompt) and a code interpreter
    "enable_search": True,
    "enable_code_interpreter": True,
}


@pytest.fixture(scope="module")
def box(box_factory: BoxFactory) -> Box:
    return box_factory()


def ask(box: Box, key: str, **extra: Any) -> Any:
    return box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO, extra_body=extra)


@pytest.mark.parametrize("name", list(BILLED))
def test_a_billed_field_is_refused_until_the_operator_allows_it(
    box: Box, fake: FakeOpenAI, name: str
) -> None:
    email, key = box.new_user("1")
    start = box.balance(email)
    with pytest.raises(openai.BadRequestError) as caught:
        ask(box, key, **{name: BILLED[name]})
    assert caught.value.code == "field_not_allowed"
    assert caught.value.body["param"] == name  # type: ignore[index]
    assert f"{name} is not allowed for {MODEL}: it makes the provider bill" in caught.value.message
    assert fake.requests == [] and box.balance(email) == start
    out = box.cli("providers", "update", "fake", "--allow-field", name)
    assert f"allowed fields: {name}" in out
    time.sleep(ROUTES_RELOAD_SEC)
    try:
        done = ask(box, key, **{name: BILLED[name]})
        assert done.choices[0].message.content == "Hello from the fake upstream."
        assert fake.requests[-1].body[name] == BILLED[name]
    finally:
        box.cli("providers", "update", "fake", "--no-allow-field", name)
        time.sleep(ROUTES_RELOAD_SEC)
    with pytest.raises(openai.BadRequestError):
        ask(box, key, **{name: BILLED[name]})


@pytest.mark.parametrize(
    "extra",
    [
        {"top_k": 40},
        {"reasoning_effort": "low"},
        {"service_tier": "auto"},
        {"service_tier": "default"},
        {"models": []},
        {"provider": None},
        {"modalities": ["text"]},
        {"enable_search": False},
        {"enable_code_interpreter": False},
    ],
)
def test_ordinary_parameters_and_free_values_pass(
    box: Box, fake: FakeOpenAI, extra: dict[str, Any]
) -> None:
    _, key = box.new_user("1")
    done = ask(box, key, **extra)
    assert done.choices[0].message.content == "Hello from the fake upstream."
    sent = fake.requests[-1].body
    assert all(sent.get(name) == value for name, value in extra.items())


@pytest.mark.parametrize("tier", ["priority", "flex", "scale", "standard_only"])
def test_every_service_tier_but_auto_and_default_is_refused(
    box: Box, fake: FakeOpenAI, tier: str
) -> None:
    """The contract names the two that pass; any other tier (Anthropic's `standard_only`
    too) waits for the operator's --allow-field service_tier."""
    _, key = box.new_user("1")
    with pytest.raises(openai.BadRequestError) as caught:
        ask(box, key, service_tier=tier)
    assert caught.value.code == "field_not_allowed"
    assert fake.requests == []


def test_streams_are_refused_too(box: Box, fake: FakeOpenAI) -> None:
    _, key = box.new_user("1")
    with pytest.raises(openai.BadRequestError) as caught:
        box.sdk(key).chat.completions.create(
            model=MODEL, messages=HELLO, stream=True, extra_body={"plugins": BILLED["plugins"]}
        )
    assert caught.value.code == "field_not_allowed"
    assert fake.requests == []


def test_web_search_options_as_openais_docs_send_it_is_refused(box: Box, fake: FakeOpenAI) -> None:
    """OpenAI's own example turns web search on with `web_search_options={}` (and LiteLLM maps
    it to Anthropic's paid web search tool): an empty object is the field sent, not absent."""
    email, key = box.new_user("1")
    start = box.balance(email)
    with pytest.raises(openai.BadRequestError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO, web_search_options={})
    assert caught.value.code == "field_not_allowed"
    assert caught.value.body["param"] == "web_search_options"  # type: ignore[index]
    assert fake.requests == [] and box.balance(email) == start


SERVER_TOOLS = [
    ("web_search", {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}),
    ("web_fetch", {"type": "web_fetch_20250910", "name": "web_fetch"}),
    ("code_execution", {"type": "code_execution_20250825", "name": "code_execution"}),
]


@pytest.mark.parametrize(("name", "tool"), SERVER_TOOLS)
def test_anthropic_server_tools_in_chat_tools_are_refused_until_allowed(
    box: Box, fake: FakeOpenAI, name: str, tool: dict[str, Any]
) -> None:
    """An `openai` provider may be a LiteLLM or OpenRouter front of Claude, which runs (and
    bills per use) Anthropic's server tools sent in a chat request's `tools`: refused as on
    /v1/messages unless the operator allowed the tool for the provider (and held for: a
    context window for each turn of its loop after the first)."""
    email, key = box.new_user("10")
    start = box.balance(email)
    with pytest.raises(openai.BadRequestError) as caught:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO, tools=[tool])  # type: ignore[list-item]
    assert caught.value.code == "field_not_allowed"
    assert caught.value.body["param"] == "tools"  # type: ignore[index]
    assert f"{name} is not allowed for {MODEL}" in caught.value.message
    assert fake.requests == [] and box.balance(email) == start
    box.cli("providers", "update", "fake", "--allow-field", name)
    time.sleep(ROUTES_RELOAD_SEC)
    try:
        box.sdk(key).chat.completions.create(model=MODEL, messages=HELLO, tools=[tool])  # type: ignore[list-item]
        assert fake.requests[-1].body["tools"] == [tool]
    finally:
        box.cli("providers", "update", "fake", "--no-allow-field", name)
        time.sleep(ROUTES_RELOAD_SEC)


def test_a_server_tools_results_are_held_for(box: Box, fake: FakeOpenAI) -> None:
    """An Anthropic server tool the operator allowed for an `openai` provider (a LiteLLM or
    OpenRouter front of Claude runs it) brings input of its own that the request does not
    show, read again on each turn of the server's loop: the search of Anthropic's example
    bills 10,682 prompt tokens for a prompt of a few. Held for like media, the model's context
    window, it is charged in full."""
    _assert_a_web_search_is_charged_in_full(box, fake, dollars=5, prompt_tokens=10_682)


def test_a_server_tool_loop_is_held_for_the_input_of_every_turn(box: Box, fake: FakeOpenAI) -> None:
    """Each turn of Claude's server tool loop reads the conversation again, and the usage sums
    the turns: through a front of Claude on chat, five turns of 150,000 prompt tokens bill
    750,000, past the one context window (200,000) the hold took for input. Held for a window
    per turn, the user is charged all of it (with one held, the operator paid the rest)."""
    _assert_a_web_search_is_charged_in_full(box, fake, dollars=10, prompt_tokens=750_000)


def _assert_a_web_search_is_charged_in_full(
    box: Box, fake: FakeOpenAI, *, dollars: int, prompt_tokens: int
) -> None:
    """A chat call with Anthropic's web search (allowed for the provider while it runs) to a
    user holding `dollars`, whose upstream bills `prompt_tokens` of input: all charged."""
    email, key = box.new_user(str(dollars))
    box.cli("providers", "update", "fake", "--allow-field", "web_search")
    time.sleep(ROUTES_RELOAD_SEC)
    fake.push(Reply(content="Sunny, 72F.", prompt_tokens=prompt_tokens, completion_tokens=510))
    search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
    body = {"model": MODEL, "max_tokens": 600, "messages": HELLO, "tools": [search]}
    try:
        with box.http(key) as http:
            answer = http.post("/v1/chat/completions", json=body)
    finally:
        box.cli("providers", "update", "fake", "--no-allow-field", "web_search")
        time.sleep(ROUTES_RELOAD_SEC)
    assert answer.status_code == 200, answer.text
    row = box.settled_row(answer.headers["x-request-id"])
    assert row["cost_nanos"] == cost_nanos(prompt_tokens, 510, IN_PRICE, OUT_PRICE)
    assert box.balance(email) == (dollars * NANOS - row["cost_nanos"], 0)


def test_a_server_tool_loop_streams_past_max_tokens_whole(box: Box, fake: FakeOpenAI) -> None:
    """Claude's server tool loop calls the model more than once, each call limited to
    max_tokens (the anthropic SDK 2.17 documents output_tokens over max_tokens then): through
    a front of Claude on chat, a stream of 30 pieces for max_tokens 20 reaches the client
    whole, finished as the upstream said, and is charged what it reported."""
    email, key = box.new_user("5")
    box.cli("providers", "update", "fake", "--allow-field", "web_search")
    time.sleep(ROUTES_RELOAD_SEC)
    words = [f" w{n}" for n in range(30)]
    fake.push(Reply(content="".join(words), pieces=words, completion_tokens=31))
    search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 1}
    try:
        stream = box.sdk(key).chat.completions.create(
            model=MODEL, messages=HELLO, tools=[search], max_tokens=20,  # type: ignore[list-item]
            stream=True, stream_options={"include_usage": True},
        )  # fmt: skip
        chunks = list(stream)
    finally:
        box.cli("providers", "update", "fake", "--no-allow-field", "web_search")
        time.sleep(ROUTES_RELOAD_SEC)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert (text, finish) == ("".join(words), ["stop"])
    charged = 5 * NANOS - box.balance(email)[0]
    assert charged == cost_nanos(chunks[-1].usage.prompt_tokens, 31, IN_PRICE, OUT_PRICE)  # type: ignore[union-attr]
    assert box.balance(email)[1] == 0


@pytest.mark.parametrize(
    "field",
    [
        {"plugins": [{"id": "web", "max_results": 5}]},
        {"web_search_options": {}},
        {"enable_search": True},
    ],
)
def test_search_results_a_gateway_adds_to_the_prompt_are_held_for(
    box: Box, fake: FakeOpenAI, field: dict[str, Any]
) -> None:
    """OpenRouter's web plugin (or web_search_options, which turns it on) puts the search
    results into the prompt, billed as its prompt tokens: a 12,000-token prompt from a body of
    a few hundred bytes (so does Model Studio's `enable_search`). The hold took the body alone
    for input, so the charge stopped at it and the operator paid the rest; now the context
    window is held for input once (the whole prompt fits in it), and the user is charged what
    the provider reported."""
    (name,) = field
    email, key = box.new_user("5")
    box.cli("providers", "update", "fake", "--allow-field", name)
    time.sleep(ROUTES_RELOAD_SEC)
    fake.push(Reply(content="Sunny, 72F.", prompt_tokens=12_000, completion_tokens=10))
    body = {"model": MODEL, "max_tokens": 20, "messages": HELLO, **field}
    try:
        with box.http(key) as http:
            answer = http.post("/v1/chat/completions", json=body)
    finally:
        box.cli("providers", "update", "fake", "--no-allow-field", name)
        time.sleep(ROUTES_RELOAD_SEC)
    assert answer.status_code == 200, answer.text
    row = box.settled_row(answer.headers["x-request-id"])
    assert row["cost_nanos"] == cost_nanos(12_000, 10, IN_PRICE, OUT_PRICE)
    assert box.balance(email) == (5 * NANOS - row["cost_nanos"], 0)


def test_an_online_model_is_held_for_the_search_results_in_its_prompt(
    box: Box, fake: FakeOpenAI
) -> None:
    """An OpenRouter model id ending in `:online` runs its web plugin on every call, the
    search results in the prompt: the operator's catalog entry chose it, and each call's
    prompt tokens are more than its body. Held as plugins are (the window once)."""
    from tests.gateway.conftest import MODEL_PRICES

    online = "fake/gpt-online"
    box.cli("models", "set", online, *MODEL_PRICES, "--provider", "fake",
            "--upstream-model", "openai/gpt-4o:online")  # fmt: skip
    time.sleep(ROUTES_RELOAD_SEC)
    _, key = box.new_user("5")
    fake.push(Reply(content="Sunny, 72F.", prompt_tokens=12_000, completion_tokens=10))
    body = {"model": online, "max_tokens": 20, "messages": HELLO}
    with box.http(key) as http:
        answer = http.post("/v1/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    row = box.settled_row(answer.headers["x-request-id"])
    assert row["cost_nanos"] == cost_nanos(12_000, 10, IN_PRICE, OUT_PRICE)
