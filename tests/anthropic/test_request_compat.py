"""OpenAI requests as real clients send them, made acceptable to Anthropic's stricter API.

Each case is something OpenAI takes and Anthropic answers 400 to (or worse, mishandles):
whitespace-only text, a prefill's trailing whitespace, other providers' tool call ids,
image/jpg, a `user` that identifies someone, streamed thinking blocks handed back, schemas
outside the structured-output subset. Every translated body must pass the strict fake.
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from codelace_box.errors import InvalidRequest
from codelace_box.providers.base import UpstreamTarget
from tests.anthropic.test_request import ADAPTER, HELLO, TOOLS, _tool_loop, build
from tests.fakes.anthropic_checks import media_problem
from tests.fakes.anthropic_validation import request_problem


@pytest.mark.parametrize(
    "user",
    ["alice@example.com", "+1 (555) 010-9999", "15550109999", "x" * 300, "Alice Smith"],
)
def test_a_user_that_identifies_someone_is_sent_as_a_hash(user: str) -> None:
    # Anthropic wants an opaque metadata.user_id (<= 256 characters) and refuses one that looks
    # like an email address or a phone number; OpenAI clients often send exactly that as `user`.
    user_id = build({"messages": HELLO, "user": user})["metadata"]["user_id"]
    assert user_id == hashlib.sha256(user.encode()).hexdigest()


@pytest.mark.parametrize("user", ["u-1", "550e8400-e29b-41d4-a716-446655440000", "a1b2" * 16])
def test_an_opaque_user_is_sent_as_is(user: str) -> None:
    assert build({"messages": HELLO, "user": user})["metadata"] == {"user_id": user}


def test_whitespace_only_text_is_left_out() -> None:
    # Anthropic refuses a text block of only whitespace ("text content blocks must contain
    # non-whitespace text"); OpenAI clients send them (e.g. "\n\n" beside tool calls).
    call = {"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    body = {
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": " "}]},
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "\n\n", "tool_calls": [call]},
            {
                "role": "tool",
                "tool_call_id": "toolu_1",
                "content": [{"type": "text", "text": "\n"}],
            },
            {
                "role": "user",
                "content": [{"type": "text", "text": " "}, {"type": "text", "text": "go"}],
            },
            {"role": "assistant", "content": "  "},
            {"role": "user", "content": "on"},
        ],
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }
    out = build(body)
    assert out["system"] == [{"type": "text", "text": "Be brief."}]
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1"},
                {"type": "text", "text": "go"},
                {"type": "text", "text": "on"},
            ],
        },
    ]
    with pytest.raises(InvalidRequest, match="non-empty content"):
        ADAPTER.check_request({"messages": [{"role": "user", "content": " \n"}]})


def test_a_final_assistant_prefill_loses_its_trailing_whitespace() -> None:
    prefill = {"role": "assistant", "content": [{"type": "text", "text": "The answer is "}]}
    out = build({"messages": [*HELLO, prefill]})
    assert out["messages"][-1]["content"] == [{"type": "text", "text": "The answer is"}]


def test_tool_call_ids_from_other_providers_are_made_acceptable() -> None:
    # A conversation begun on another model may carry ids Anthropic refuses
    # (pattern ^[a-zA-Z0-9_-]+$), e.g. Kimi's "functions.get_weather:0".
    ids = ["functions.get_weather:0", "functions.get_weather:1", "call_ok-1"]
    calls = [
        {"id": i, "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
        for i in ids
    ]
    body = {
        "messages": [
            *HELLO,
            {"role": "assistant", "content": None, "tool_calls": calls},
            *[{"role": "tool", "tool_call_id": i, "content": f"r{n}"} for n, i in enumerate(ids)],
        ],
        "tools": TOOLS,
    }
    turns = build(body)["messages"]
    uses = [b["id"] for b in turns[1]["content"]]
    results = [(b["tool_use_id"], b["content"]) for b in turns[2]["content"]]
    assert results == [(u, f"r{n}") for n, u in enumerate(uses)]
    assert len(set(uses)) == 3
    assert uses[2] == "call_ok-1"


def _weather_turn(call_id: str, city: str) -> list[dict[str, object]]:
    """One tool round of another model: its call (under `call_id`) and the tool's answer."""
    arguments = f'{{"city": "{city}"}}'
    call = {"id": call_id, "type": "function",
            "function": {"name": "get_weather", "arguments": arguments}}  # fmt: skip
    return [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call_id, "content": f"sunny in {city}"},
    ]


@pytest.mark.parametrize("call_id", ["functions.get_weather:0", "call_0"])
def test_a_tool_call_id_another_model_used_again_is_made_unique(call_id: str) -> None:
    # Servers that number their calls per answer (Kimi K2's "functions.<name>:<n>" at some
    # hosts, llama.cpp-style "call_0") give each turn's first call the same id. OpenAI takes
    # that; Anthropic refuses any tool_use id seen before in the request ("`tool_use` ids
    # must be unique"), so a conversation begun there could not go on with Claude.
    body = {
        "messages": [*HELLO, *_weather_turn(call_id, "Paris"), *_weather_turn(call_id, "Oslo")],
        "tools": TOOLS,
    }
    out = build(body)
    assert request_problem(out) is None
    turns = out["messages"]
    first, second = (turns[n]["content"][0]["id"] for n in (1, 3))
    assert first != second
    assert [b["tool_use_id"] for b in turns[2]["content"]] == [first]
    assert [b["tool_use_id"] for b in turns[4]["content"][:1]] == [second]
    assert build(body) == out  # the same ids every call: a stable prompt-cache prefix


def test_a_tool_call_id_twice_in_one_answer_pairs_its_results_in_order() -> None:
    calls = [
        {"id": "call_0", "type": "function",
         "function": {"name": "get_weather", "arguments": f'{{"city": "{city}"}}'}}
        for city in ("Paris", "Oslo")
    ]  # fmt: skip
    body = {
        "messages": [
            *HELLO,
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": "call_0", "content": "sunny in Paris"},
            {"role": "tool", "tool_call_id": "call_0", "content": "rain in Oslo"},
        ],
        "tools": TOOLS,
    }
    out = build(body)
    assert request_problem(out) is None
    uses = [(b["id"], b["input"]["city"]) for b in out["messages"][1]["content"]]
    results = [(b["tool_use_id"], b["content"]) for b in out["messages"][2]["content"]]
    assert [r[0] for r in results] == [u[0] for u in uses]
    assert results[1][1] == "rain in Oslo" and uses[1][1] == "Oslo"


def test_image_jpg_data_urls_are_sent_as_jpeg() -> None:
    # "image/jpg" is common in clients' data URLs; Anthropic only names it image/jpeg.
    part = {"type": "image_url", "image_url": {"url": "data:image/jpg;base64,/9j/4AAQ"}}
    [block] = build({"messages": [{"role": "user", "content": [part]}]})["messages"][0]["content"]
    assert block["source"] == {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}


IMAGES = {  # the first bytes of each format Anthropic takes, in base64
    "image/png": base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR").decode(),
    "image/jpeg": base64.b64encode(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00").decode(),
    "image/gif": base64.b64encode(b"GIF89a\x01\x00\x01\x00\x80\x00").decode(),
    "image/webp": base64.b64encode(b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00").decode(),
}


@pytest.mark.parametrize("actual", list(IMAGES))
@pytest.mark.parametrize("labelled", ["image/png", "image/jpeg", "application/octet-stream"])
def test_an_image_labelled_as_another_format_is_sent_as_what_it_is(
    actual: str, labelled: str
) -> None:
    # OpenAI reads an image's bytes, so clients label data URLs loosely (a JPEG photo as
    # image/png, anything as octet-stream); Anthropic refuses a media_type the bytes belie
    # ("Image does not match the provided media type image/png").
    part = {"type": "image_url", "image_url": {"url": f"data:{labelled};base64,{IMAGES[actual]}"}}
    tool_call = {"id": "toolu_1", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{}"}}  # fmt: skip
    body = {
        "messages": [
            {"role": "user", "content": [part, {"type": "text", "text": "What is this?"}]},
            {"role": "assistant", "content": None, "tool_calls": [tool_call]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": [part]},
        ],
        "tools": TOOLS,
    }
    out = build(body)
    assert media_problem(out) is None
    user, _, tool = out["messages"]
    sources = [user["content"][0]["source"], tool["content"][0]["content"][0]["source"]]
    assert sources == [{"type": "base64", "media_type": actual, "data": IMAGES[actual]}] * 2


def test_streamed_thinking_blocks_pass_back_without_their_stream_index() -> None:
    blocks = [
        {"type": "thinking", "thinking": "Check Oslo.", "signature": "EqQBsig", "index": 0},
        {"type": "redacted_thinking", "data": "EmwKAhgB", "index": 1},
    ]
    out = build(_tool_loop(blocks))
    assert out["messages"][1]["content"][:2] == [
        {"type": "thinking", "thinking": "Check Oslo.", "signature": "EqQBsig"},
        {"type": "redacted_thinking", "data": "EmwKAhgB"},
    ]
    assert "thinking" in out


def test_structured_output_schemas_are_fitted_to_anthropics_subset() -> None:
    # What pydantic makes of `age: int = Field(ge=0, le=150)`, `tags: list[str] = Field(
    # min_length=2)`, `nick: str | None = Field(max_length=12)`: OpenAI takes it, Anthropic
    # answers 400 unless the bounds move into the descriptions, as Anthropic's SDK does.
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "title": "Person",
        "properties": {
            "age": {"type": "integer", "minimum": 0, "maximum": 150, "title": "Age"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "nick": {"type": ["string", "null"], "maxLength": 12},
            "email": {"type": "string", "format": "email"},
        },
        "required": ["age", "tags", "nick", "email"],
    }
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}
    tool = {"type": "function", "function": {"name": "save", "parameters": schema, "strict": True}}
    out = build({"messages": HELLO, "response_format": fmt, "tools": [tool]})
    fitted = out["output_config"]["format"]["schema"]
    assert out["tools"][0]["input_schema"] == fitted
    assert fitted == {
        "type": "object",
        "title": "Person",
        "properties": {
            "age": {"type": "integer", "title": "Age", "description": "{minimum: 0, maximum: 150}"},
            "tags": {
                "type": "array",
                "items": {"type": "string"},
                "description": "{minItems: 2}",
            },
            "nick": {
                "anyOf": [
                    {"type": "string", "description": "{maxLength: 12}"},
                    {"type": "null"},
                ]
            },
            "email": {"type": "string", "format": "email"},
        },
        "additionalProperties": False,
        "required": ["age", "tags", "nick", "email"],
    }
    loose = {"type": "function", "function": {"name": "save", "parameters": schema}}
    assert build({"messages": HELLO, "tools": [loose]})["tools"][0]["input_schema"] == schema


def test_thinking_blocks_lead_an_assistant_turn_split_over_two_messages() -> None:
    # Some clients send the text and the tool calls of one answer as two assistant messages;
    # merged, the turn must still begin with its thinking blocks.
    block = {"type": "thinking", "thinking": "Check Oslo.", "signature": "EqQBsig"}
    body = _tool_loop([block])
    assistant = body["messages"][1]
    body["messages"][1:2] = [{"role": "assistant", "content": "Checking."}, assistant]
    content = build(body)["messages"][1]["content"]
    assert [b["type"] for b in content] == ["thinking", "text", "tool_use"]


@pytest.mark.parametrize(
    ("model", "effort", "expected"),
    [
        ("claude-opus-4-7", "medium", "medium"),
        ("claude-opus-4-7-20260416", "minimal", "low"),
        ("claude-sonnet-5", "xhigh", "xhigh"),
        ("claude-fable-5-1", "max", "max"),
    ],
)
def test_models_that_only_think_adaptively_get_adaptive_thinking_and_an_effort(
    model: str, effort: str, expected: str
) -> None:
    # Claude Opus 4.7 and the Claude 5 family refuse budget thinking with a 400; they take
    # thinking {type: adaptive} and output_config.effort instead.
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}
    body = {"messages": HELLO, "reasoning_effort": effort, "response_format": fmt}
    ADAPTER.check_request(body)
    request = ADAPTER.build_request(
        body,
        UpstreamTarget(
            upstream_model=model, api_key="k", base_url="", stream=True, default_max_tokens=64000
        ),
    )
    sent = request.json_body
    assert request_problem(sent) is None, request_problem(sent)
    assert sent["thinking"] == {"type": "adaptive", "display": "summarized"}
    assert sent["output_config"]["effort"] == expected
    assert sent["output_config"]["format"]["type"] == "json_schema"


def test_claude_4_6_and_older_keep_budget_thinking() -> None:
    for model in ("claude-opus-4-6", "claude-haiku-4-5-20251001", "claude-custom"):
        body = {"messages": HELLO, "reasoning_effort": "high", "max_tokens": 8000}
        request = ADAPTER.build_request(
            body,
            UpstreamTarget(
                upstream_model=model,
                api_key="k",
                base_url="",
                stream=False,
                default_max_tokens=None,
            ),
        )
        assert request.json_body["thinking"] == {"type": "enabled", "budget_tokens": 6400}
        assert "output_config" not in request.json_body


@pytest.mark.parametrize("model", ["claude-opus-4-7", "claude-opus-4-7-20260416"])
def test_sampling_is_left_out_for_models_that_took_it_out(model: str) -> None:
    # Claude Opus 4.7 refuses any temperature or top_p with a 400 ("`temperature` is deprecated
    # for this model"), while OpenAI clients send one by default (LangChain, agents): the box
    # leaves them out, as OpenRouter does, with or without reasoning_effort.
    target = UpstreamTarget(
        upstream_model=model, api_key="k", base_url="", stream=False, default_max_tokens=8000
    )
    for extra in (
        {"temperature": 0.7},
        {"top_p": 0.5},
        {"top_k": 40},
        {"temperature": 0.2, "reasoning_effort": "high"},
    ):
        body = {"messages": HELLO, **extra}
        ADAPTER.check_request(body, upstream_model=model)
        sent = ADAPTER.build_request(body, target).json_body
        assert request_problem(sent) is None, request_problem(sent)
        assert not {"temperature", "top_p", "top_k"} & set(sent)


def test_sampling_still_reaches_older_models_and_still_conflicts_with_thinking() -> None:
    sent = build({"messages": HELLO, "temperature": 0.7, "top_k": 40})
    assert (sent["temperature"], sent["top_k"]) == (0.7, 40)
    with pytest.raises(InvalidRequest) as caught:
        ADAPTER.check_request(
            {"messages": HELLO, "temperature": 0.2, "reasoning_effort": "high"},
            upstream_model="claude-opus-4-6",
        )
    assert caught.value.param == "temperature"


def test_cache_control_on_content_parts_stays_on_their_blocks() -> None:
    # OpenRouter, LiteLLM and Portkey take Anthropic's prompt-cache breakpoints as a part's
    # cache_control in the OpenAI format, and agents (Cline, aider, ...) send them: dropped, every
    # turn of a long conversation is billed at the full input price instead of cache reads.
    ephemeral = {"type": "ephemeral"}
    png = "data:image/png;base64,iVBORw0KGgo="
    hour = {**ephemeral, "ttl": "1h"}
    body = {
        "messages": [
            {"role": "system", "content": [
                {"type": "text", "text": "Rules."},
                {"type": "text", "text": "A long manual.", "cache_control": ephemeral},
            ]},
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": png}, "cache_control": ephemeral},
                {"type": "text", "text": "What is it?", "cache_control": hour},
            ]},
        ]
    }  # fmt: skip
    sent = build(body)
    assert sent["system"] == [
        {"type": "text", "text": "Rules."},
        {"type": "text", "text": "A long manual.", "cache_control": ephemeral},
    ]
    image, text = sent["messages"][0]["content"]
    assert image["cache_control"] == ephemeral
    assert text == {
        "type": "text",
        "text": "What is it?",
        "cache_control": {**ephemeral, "ttl": "1h"},
    }


@pytest.mark.parametrize(
    "control", [{"type": "persistent"}, {"type": "ephemeral", "ttl": "2h"}, "yes"]
)
def test_a_malformed_cache_control_is_a_400_naming_the_part(control: object) -> None:
    part = {"type": "text", "text": "hi", "cache_control": control}
    with pytest.raises(InvalidRequest) as caught:
        build({"messages": [{"role": "user", "content": [part]}]})
    assert caught.value.param == "messages[0]"
    assert "cache_control" in caught.value.message


def test_cache_control_on_a_tool_stays_on_it() -> None:
    # LiteLLM takes a breakpoint on a tool definition (caching every tool up to it), as
    # Anthropic does on its tools; agents with large tool sets send it.
    tools = [dict(tool) for tool in TOOLS]
    tools[-1]["cache_control"] = {"type": "ephemeral"}
    sent = build({"messages": HELLO, "tools": tools})
    assert sent["tools"][-1]["cache_control"] == {"type": "ephemeral"}
    assert all("cache_control" not in tool for tool in sent["tools"][:-1])
    tools[-1]["cache_control"] = {"type": "forever"}
    with pytest.raises(InvalidRequest) as caught:
        build({"messages": HELLO, "tools": tools})
    assert caught.value.param == f"tools[{len(tools) - 1}]"


@pytest.mark.parametrize(
    ("model", "both"),
    [
        ("claude-sonnet-4-20250514", True),
        ("claude-opus-4-20250514", True),
        ("claude-3-7-sonnet-20250219", True),
        ("claude-3-5-haiku-latest", True),
        ("claude-opus-4-1-20250805", False),
        ("claude-sonnet-4-5", False),
        ("claude-haiku-4-5-20251001", False),
        ("claude-opus-4-6", False),
        ("claude-latest", False),  # no version: taken to refuse the pair
    ],
)
def test_only_claude_before_opus_4_1_takes_temperature_and_top_p_together(
    model: str, both: bool
) -> None:
    body = {"messages": HELLO, "temperature": 0.5, "top_p": 0.9}
    if not both:
        with pytest.raises(InvalidRequest, match="only one of temperature and top_p"):
            ADAPTER.check_request(body, upstream_model=model)
        return
    ADAPTER.check_request(body, upstream_model=model)
    target = UpstreamTarget(
        upstream_model=model, api_key="k", base_url="", stream=False, default_max_tokens=100
    )
    sent = ADAPTER.build_request(body, target).json_body
    assert request_problem(sent) is None, request_problem(sent)
    assert (sent["temperature"], sent["top_p"]) == (0.5, 0.9)
