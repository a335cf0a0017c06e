"""What a client may ask of OpenAI's newest request features through the box, on /v1/responses
(translated to chat, and passed through to a provider added with `--responses-api`) and on
/v1/chat/completions: nothing that stores state on the operator's account or reads stored state
(the box is stateless), no hosted tool and no field that bills beyond the token prices unless
the operator allowed it; refused with a 400 naming the field before anything is sent or held.
What changes neither the answer's content nor its price goes through."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes import openai_wire as wire
from tests.fakes.hostile_upstream import Act, HostileUpstream
from tests.oaiwire.conftest import CHAT_MODEL, CREDIT_NANOS, NATIVE_MODEL, OPEN_MODEL, OaiBox

pytestmark = pytest.mark.timeout(60)
RESPONSES_MODELS = {"native": NATIVE_MODEL, "translated": CHAT_MODEL}
HELLO = [{"role": "user", "content": "hi"}]
FUNCTION = {"type": "function", "name": "get_weather",
            "parameters": {"type": "object", "properties": {}}}  # fmt: skip

# field -> (extra body, the param the 400 names)
STATEFUL = {
    "previous_response_id": ({"previous_response_id": "resp_68af4030592c81938ec0a5fbab4a3e9f"},
                             "previous_response_id"),
    "conversation_id": ({"conversation": "conv_689667905b048191b4740501625afd940c7533ace33a2dab"},
                        "conversation"),
    "conversation_object": ({"conversation": {"id": "conv_6896679"}}, "conversation"),
    "prompt": ({"prompt": {"id": "pmpt_abc123", "version": "2",
                           "variables": {"city": "Paris"}}}, "prompt"),
    "background": ({"background": True}, "background"),
    "item_reference": ({"input": [{"type": "item_reference", "id": "msg_0c1d080fecb57ef60"}]},
                       "input[0].type"),
    "file_id": ({"input": [{"role": "user", "content": [
        {"type": "input_file", "file_id": "file-6F2ksmvXxt4VdoqmHRw6kL"}]}]}, "input"),
    "context_management": ({"context_management": [{"type": "compaction",
                                                    "compact_threshold": 1000}]},
                           "context_management"),
    "truncation_auto": ({"truncation": "auto"}, "truncation"),
}  # fmt: skip
HOSTED = {
    "web_search_preview": {"tools": [{"type": "web_search_preview"}]},
    "file_search": {"tools": [{"type": "file_search", "vector_store_ids": ["vs_1234567890"]}]},
    "code_interpreter": {"tools": [{"type": "code_interpreter",
                                    "container": {"type": "auto"}}]},
    "image_generation": {"tools": [{"type": "image_generation", "quality": "high"}]},
    "mcp": {"tools": [{"type": "mcp", "server_label": "dmcp",
                       "server_url": "https://dmcp-server.deno.dev/sse",
                       "require_approval": "never"}]},
    "computer_use": {"tools": [{"type": "computer_use_preview", "display_width": 1024,
                                "display_height": 768, "environment": "browser"}]},
    "tool_choice_web_search": {"tools": [FUNCTION, {"type": "web_search"}],
                               "tool_choice": {"type": "web_search"}},
    "tool_choice_only_web_search": {"tools": [{"type": "web_search"}],
                                    "tool_choice": "required"},
    "max_tool_calls": {"tools": [{"type": "web_search"}], "max_tool_calls": 20},
}  # fmt: skip
PRICIER = {f"service_tier_{tier}": {"service_tier": tier} for tier in ("priority", "flex", "scale")}


def refused(box: OaiBox, hostile: HostileUpstream, route: str, body: dict[str, Any]) -> Any:
    """The 400 answer to a body (with a fresh user's key); nothing sent, nothing charged."""
    email, key = box.new_user("5")
    with box.http(key) as http:
        answer = http.post(route, json=body)
    assert answer.status_code == 400, answer.text
    assert hostile.seen == []
    assert box.balance_nanos(email) == (CREDIT_NANOS, 0)
    return answer.json()["error"]


@pytest.mark.parametrize("model", list(RESPONSES_MODELS.values()), ids=list(RESPONSES_MODELS))
@pytest.mark.parametrize("name", list(STATEFUL))
def test_stateful_responses_features_are_refused(
    box: OaiBox, hostile: HostileUpstream, model: str, name: str
) -> None:
    extra, param = STATEFUL[name]
    error = refused(box, hostile, "/v1/responses", {"model": model, "input": "hi", **extra})
    assert error["type"] == "invalid_request_error"
    assert error["param"].startswith(param.split(".")[0]), error


@pytest.mark.parametrize("model", list(RESPONSES_MODELS.values()), ids=list(RESPONSES_MODELS))
@pytest.mark.parametrize("name", [*HOSTED, *PRICIER])
def test_hosted_tools_and_pricier_tiers_are_refused(
    box: OaiBox, hostile: HostileUpstream, model: str, name: str
) -> None:
    extra = HOSTED.get(name) or PRICIER[name]
    error = refused(box, hostile, "/v1/responses", {"model": model, "input": "hi", **extra})
    assert error["type"] == "invalid_request_error"


HARMLESS: dict[str, Any] = {
    "store": True,
    "include": ["reasoning.encrypted_content", "message.output_text.logprobs"],
    "prompt_cache_key": "thread-7f3a",
    "prompt_cache_retention": "24h",
    "reasoning": {"effort": "max", "summary": "detailed"},
    "text": {"verbosity": "low"},
    "service_tier": "auto",
    "safety_identifier": "user-1234",
    "metadata": {"session": "s-1"},
    "tools": [FUNCTION, {"type": "web_search"}],
    "parallel_tool_calls": False,
    "background": False,
    "stream_options": {"include_obfuscation": False},
}


def test_a_native_request_goes_unstored_without_hosted_tools(
    box: OaiBox, hostile: HostileUpstream
) -> None:
    """What changes neither the answer's content nor its price reaches the native upstream as
    sent (GPT-5.6 Sol's `max` effort included); `store` goes as false and Codex's default
    `web_search` tool is left out."""
    _, key = box.new_user("5")
    hostile.push(Act(200, [wire.summary_and_citation().whole()]))
    with box.http(key) as http:
        answer = http.post(
            "/v1/responses",
            json={"model": NATIVE_MODEL, "input": "hi", "stream": True, **HARMLESS}
            | {"stream": False},
        )
    assert answer.status_code == 200, answer.text
    sent = hostile.seen[-1].body
    assert sent["store"] is False
    assert sent["tools"] == [FUNCTION]
    for name in (
        "include",
        "prompt_cache_key",
        "prompt_cache_retention",
        "reasoning",
        "text",
        "safety_identifier",
        "metadata",
        "service_tier",
    ):
        assert sent[name] == HARMLESS[name], name


def test_a_translated_request_takes_the_same_fields(box: OaiBox, hostile: HostileUpstream) -> None:
    _, key = box.new_user("5")
    hostile.push(Act(200, [wire.chat_body(wire.chat_usage())]))
    with box.http(key) as http:
        answer = http.post("/v1/responses", json={"model": CHAT_MODEL, "input": "hi",
                                                  **HARMLESS})  # fmt: skip
    assert answer.status_code == 200, answer.text
    sent = hostile.seen[-1].body
    assert "store" not in sent and "metadata" not in sent
    assert sent["reasoning_effort"] == "max"
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]


CHAT_PRICIER = {
    "audio_output": {"modalities": ["text", "audio"], "audio": {"voice": "alloy",
                                                                 "format": "wav"}},
    "modalities_only": {"modalities": ["audio"]},
    "web_search_options": {"web_search_options": {}},
    "service_tier_priority": {"service_tier": "priority"},
    "service_tier_flex": {"service_tier": "flex"},
    "openrouter_preset": {"preset": "email-copywriter"},
    "audio_input": {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is in this recording?"},
        {"type": "input_audio", "input_audio": {"data": "UklGRiQAAABXQVZF", "format": "wav"}}]}]},
    # a file of audio by its name or its URL's, whatever its data says (OpenRouter takes URLs
    # in file_data, for PDFs by its docs; its audio "must be base64-encoded")
    "audio_file_by_url": {"messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_data": "https://x.test/memo.MP3?dl=1"}}]}]},
    "audio_file_by_name": {"messages": [{"role": "user", "content": [
        {"type": "file", "file": {"filename": "memo.wav",
                                  "file_data": "data:application/octet-stream;base64,UklG"}}]}]},
}  # fmt: skip


@pytest.mark.parametrize("name", list(CHAT_PRICIER))
def test_chat_fields_billed_beyond_the_token_prices_are_refused(
    box: OaiBox, hostile: HostileUpstream, name: str
) -> None:
    """Audio output and input (billed at audio token prices, many times the text ones), web
    search, pricier service tiers: 400 naming the field unless the operator allowed it."""
    body = {"model": CHAT_MODEL, "messages": HELLO, **CHAT_PRICIER[name]}
    error = refused(box, hostile, "/v1/chat/completions", body)
    assert error["code"] == "field_not_allowed", error


def test_a_pdf_by_url_in_file_data_passes_as_openrouter_documents_it(
    box: OaiBox, hostile: HostileUpstream
) -> None:
    """OpenRouter documents a PDF's URL in `file_data` (its PDF inputs guide): not audio, it
    goes upstream as sent; only a file named as audio needs the operator's `audio`."""
    _, key = box.new_user("5")
    hostile.push(Act(200, [wire.chat_body(wire.chat_usage())]))
    pdf = {"type": "file", "file": {"filename": "report.pdf",
                                    "file_data": "https://x.test/report.pdf"}}  # fmt: skip
    messages = [{"role": "user", "content": [{"type": "text", "text": "Sum it up."}, pdf]}]
    box.sdk(key).chat.completions.create(model=CHAT_MODEL, messages=messages)  # type: ignore[arg-type]
    assert hostile.seen[-1].body["messages"][0]["content"][1] == pdf


def test_chat_completions_are_not_stored_on_the_operators_account(
    box: OaiBox, hostile: HostileUpstream
) -> None:
    """`store: true` on chat would keep the user's conversation among the operator's stored
    completions (30 days, in the operator's dashboard and evals), which no user can read back
    through the box: it goes unstored, as on /v1/responses, with the `metadata` that OpenAI
    takes only for stored completions; the answer is the same."""
    _, key = box.new_user("5")
    hostile.push(Act(200, [wire.chat_body(wire.chat_usage())]))
    answer = box.sdk(key).chat.completions.create(
        model=CHAT_MODEL, messages=HELLO, store=True, metadata={"user": "u-1"},  # type: ignore[arg-type]
        reasoning_effort="high", verbosity="low", logprobs=True, top_logprobs=2,
        prompt_cache_key="k-1", service_tier="default",
    )  # fmt: skip
    assert answer.choices[0].message.content == wire.CHAT_TEXT
    sent = hostile.seen[-1].body
    assert "store" not in sent and "metadata" not in sent
    for name, value in (
        ("reasoning_effort", "high"),
        ("verbosity", "low"),
        ("logprobs", True),
        ("top_logprobs", 2),
        ("service_tier", "default"),
    ):
        assert sent[name] == value, name


GATEWAY_SERVER_TOOLS = {
    "openrouter_web_search": {"type": "openrouter:web_search", "parameters": {"max_results": 5}},
    "openrouter_web_fetch": {"type": "openrouter:web_fetch"},
    "openrouter_image_generation": {"type": "openrouter:image_generation"},
    "web_search_shorthand": {"type": "web_search"},
    "web_search_preview": {"type": "web_search_preview"},
    "web_search_dated": {"type": "web_search_2025_08_26"},
    "file_search": {"type": "file_search", "vector_store_ids": ["vs_1234567890"]},
    "code_interpreter": {"type": "code_interpreter", "container": {"type": "auto"}},
    "orq_web_search": {"type": "orq:web_search"},
}  # fmt: skip


@pytest.mark.parametrize("name", list(GATEWAY_SERVER_TOOLS))
def test_chat_server_tools_of_a_gateway_are_refused(
    box: OaiBox, hostile: HostileUpstream, name: str
) -> None:
    """An `openai` provider may be OpenRouter (or another gateway) whose server tools in `tools`
    (`openrouter:web_search`, `:web_fetch`, `:image_generation`, the `web_search` shorthand,
    OpenAI's hosted tool names) it runs itself, billed per use to the operator and bringing
    input of their own, as its `plugins` do: refused unless the operator allowed
    `server_tools` for the provider."""
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
             GATEWAY_SERVER_TOOLS[name]]  # fmt: skip
    body = {"model": CHAT_MODEL, "messages": HELLO, "tools": tools}
    error = refused(box, hostile, "/v1/chat/completions", body)
    assert error["code"] == "field_not_allowed", error
    assert "server_tools" in error["message"] and error["param"] == "tools[1]"


def test_allowed_server_tools_hold_the_context_window(
    box: OaiBox, hostile: HostileUpstream
) -> None:
    """Where the operator allowed them, a server tool's results are input nobody can size in
    advance: the hold covers the model's context window (200,000 tokens at $2.50 / 1M, $0.50),
    as for media, so $0.40 of credit is a 402 with the tool and an answer without it."""
    _, key = box.new_user("0.4")
    tool = {"type": "openrouter:web_search"}
    with box.http(key) as http:
        body = {"model": OPEN_MODEL, "messages": HELLO, "max_tokens": 100}
        assert http.post("/v1/chat/completions", json=body | {"tools": [tool]}).status_code == 402
        assert hostile.seen == []
        hostile.push(Act(200, [wire.chat_body(wire.chat_usage())]))
        assert http.post("/v1/chat/completions", json=body).status_code == 200


@pytest.mark.parametrize(
    "extra",
    [{"n": 3}, {"prediction": {"type": "content", "content": "x" * 4000}}],
    ids=["n", "prediction"],
)
def test_more_choices_and_predictions_are_held_for(
    box: OaiBox, hostile: HostileUpstream, extra: dict[str, Any]
) -> None:
    """`n` choices bill n answers, and a prediction's tokens the answer does not use bill as
    output past max_tokens: credit for one plain answer of 1,000 tokens ($0.015 output plus
    the input bound) is a 402 for either, and nothing is sent."""
    _, key = box.new_user("0.025")
    body = {"model": CHAT_MODEL, "messages": HELLO, "max_tokens": 1000}
    with box.http(key) as http:
        assert http.post("/v1/chat/completions", json=body | extra).status_code == 402
        assert hostile.seen == []
        hostile.push(Act(200, [wire.chat_body(wire.chat_usage())]))
        assert http.post("/v1/chat/completions", json=body).status_code == 200


def test_a_chat_file_id_is_refused(box: OaiBox, hostile: HostileUpstream) -> None:
    """A `file` part by `file_id` names a file stored on the provider account, which is the
    operator's (the box has no files API, so no user uploaded it): the model would read the
    operator's stored file (another app's, or a document kept for evals) to whoever guessed or
    learned its id. Refused as on /v1/responses: send the file inline (`file_data`)."""
    part = {"type": "file", "file": {"file_id": "file-6F2ksmvXxt4VdoqmHRw6kL"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "Summarize"}, part]}]
    error = refused(box, hostile, "/v1/chat/completions",
                    {"model": CHAT_MODEL, "messages": messages})  # fmt: skip
    assert error["param"] == "messages[0].content[1].file.file_id", error
    assert "file_data" in error["message"]
