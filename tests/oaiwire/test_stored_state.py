"""What reaches the operator's provider account through the OpenAI-shaped routes beside what the
box reads: a stored file or audio answer named by its id, a file fetched by URL, a hosted tool
named in another case or only in `tool_choice`, audio sent as a file. Each is a 400 naming the
field before anything is sent or held (or, for what bills beyond the token prices, unless the
operator allowed it); the tools a client runs itself go through."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes import openai_wire as wire
from tests.fakes.hostile_upstream import Act, HostileUpstream
from tests.oaiwire.conftest import CHAT_MODEL, NATIVE_MODEL, OPEN_MODEL, OaiBox
from tests.oaiwire.test_requests import FUNCTION, HELLO, RESPONSES_MODELS, refused

pytestmark = pytest.mark.timeout(60)
PDF = "data:application/pdf;base64,JVBERi0xLjQKJcfsj6IKNSAwIG9iago="
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
FILE_ID = "file-6F2ksmvXxt4VdoqmHRw6kL"
WAV = "data:audio/wav;base64,UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA="


def _asked(*parts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "input_text", "text": "Read this"}, *parts]}]


# case -> (input, the param the 400 names): a stored file's id or a URL beside the inline data
# the translation reads; a native upstream would get the whole part
BESIDE_INLINE = {
    "file_id_beside_file_data": (
        _asked({"type": "input_file", "file_data": PDF, "filename": "a.pdf", "file_id": FILE_ID}),
        "input[0].content[1].file_id"),
    "file_url_beside_file_data": (
        _asked({"type": "input_file", "file_data": PDF, "filename": "a.pdf",
                "file_url": "https://example.com/big.pdf"}),
        "input[0].content[1].file_url"),
    "image_file_id_beside_image_url": (
        _asked({"type": "input_image", "image_url": PNG, "file_id": FILE_ID}),
        "input[0].content[1].file_id"),
    "tool_output_image_file_id": (
        [{"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
         {"type": "function_call_output", "call_id": "call_1", "output": [
             {"type": "input_image", "image_url": PNG, "file_id": FILE_ID}]}],
        "input[1].output[0].file_id"),
}  # fmt: skip


@pytest.mark.parametrize("model", list(RESPONSES_MODELS.values()), ids=list(RESPONSES_MODELS))
@pytest.mark.parametrize("name", list(BESIDE_INLINE))
def test_a_stored_file_or_url_beside_inline_data_is_refused(
    box: OaiBox, hostile: HostileUpstream, model: str, name: str
) -> None:
    """A `file_id` names a file on the provider account, the operator's; a `file_url` is input
    fetched by the provider that the hold never saw. The translation reads only `file_data` and
    `image_url`, but a `--responses-api` provider gets the parts as sent: refused on both."""
    given, param = BESIDE_INLINE[name]
    body = {"model": model, "input": given, "tools": [FUNCTION]}
    error = refused(box, hostile, "/v1/responses", body)
    assert error["param"] == param, error
    assert error["type"] == "invalid_request_error"


def test_a_chat_file_url_is_refused(box: OaiBox, hostile: HostileUpstream) -> None:
    part = {"type": "file", "file": {"file_data": PDF, "file_url": "https://example.com/a.pdf"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "Summarize"}, part]}]
    error = refused(box, hostile, "/v1/chat/completions",
                    {"model": CHAT_MODEL, "messages": messages})  # fmt: skip
    assert error["param"] == "messages[0].content[1].file.file_url", error


# A hosted tool in another case (a compatible server may match types so), in `tool_choice`
# alone, or newly hosted: the tool's `param` in the refusal.
CHAT_HOSTED = {
    "mixed_case": ({"tools": [FUNCTION, {"type": "Web_Search_Preview"}]}, "tools[1]"),
    "upper_case_dated": ({"tools": [FUNCTION, {"type": "FILE_SEARCH_2025_01_01"}]}, "tools[1]"),
    "anthropic_server_tool_case": (
        {"tools": [FUNCTION, {"type": "Web_Search_20250305", "name": "web_search"}]}, "tools"),
    "tool_choice_web_search_preview": ({"tool_choice": {"type": "web_search_preview"}},
                                       "tool_choice"),
    "tool_choice_file_search": ({"tools": [FUNCTION], "tool_choice": {"type": "file_search"}},
                                "tool_choice"),
    "tool_choice_mcp": ({"tool_choice": {"type": "mcp", "server_label": "deepwiki"}},
                        "tool_choice"),
    "tool_choice_allowed_hosted": (
        {"tools": [FUNCTION], "tool_choice": {"type": "allowed_tools", "allowed_tools": {
            "mode": "required", "tools": [{"type": "image_generation"}]}}},
        "tool_choice.allowed_tools.tools[0]"),
    "hosted_shell": ({"tools": [{"type": "shell", "environment": {"type": "container_auto"}}]},
                     "tools[0]"),
    "shell_in_a_stored_container": (
        {"tools": [{"type": "shell", "environment": {"type": "container_reference",
                                                     "container_id": "cntr_6890d1"}}]},
        "tools[0]"),
    "xai_x_search": ({"tools": [{"type": "x_search"}]}, "tools[0]"),
    "xai_collections_search": (
        {"tools": [{"type": "collections_search", "vector_store_ids": ["collection_1"]}]},
        "tools[0]"),
    "bare_web_fetch": ({"tools": [{"type": "web_fetch"}]}, "tools[0]"),
    # Moonshot's (Kimi's) built-in tools: $web_search is billed per call and its results are
    # put into the prompt of the next call
    "kimi_builtin_web_search": (
        {"tools": [FUNCTION, {"type": "builtin_function", "function": {"name": "$web_search"}}]},
        "tools[1]"),
}  # fmt: skip


def _as_chat(extra: dict[str, Any]) -> dict[str, Any]:
    """Responses-shaped function tools (FUNCTION) as chat ones."""
    tools = [
        {"type": "function", "function": {"name": t["name"], "parameters": t["parameters"]}}
        if t.get("type") == "function" else t
        for t in extra.get("tools", [])
    ]  # fmt: skip
    return extra | ({"tools": tools} if tools else {})


@pytest.mark.parametrize("name", list(CHAT_HOSTED))
def test_chat_hosted_tools_are_refused_in_any_case_and_in_tool_choice(
    box: OaiBox, hostile: HostileUpstream, name: str
) -> None:
    extra, param = CHAT_HOSTED[name]
    body = {"model": CHAT_MODEL, "messages": HELLO, **_as_chat(extra)}
    error = refused(box, hostile, "/v1/chat/completions", body)
    assert error["code"] == "field_not_allowed", error
    assert error["param"] == param, error


@pytest.mark.parametrize("model", list(RESPONSES_MODELS.values()), ids=list(RESPONSES_MODELS))
@pytest.mark.parametrize(
    "extra",
    [{"tools": [FUNCTION, {"type": "Web_Search"}]},
     {"tools": [FUNCTION, {"type": "web_search"}], "tool_choice": {"type": "Web_Search"}}],
    ids=["mixed_case_tool", "mixed_case_tool_choice"],
)  # fmt: skip
def test_responses_hosted_tools_in_another_case_are_refused(
    box: OaiBox, hostile: HostileUpstream, model: str, extra: dict[str, Any]
) -> None:
    """Only Codex's own lower-case `web_search` is left out; `Web_Search` is no tool the box
    knows, and a native upstream might take it as the hosted one."""
    refused(box, hostile, "/v1/responses", {"model": model, "input": "hi", **extra})


def test_a_hosted_tool_choice_the_operator_allowed_holds_the_context_window(
    box: OaiBox, hostile: HostileUpstream
) -> None:
    """Allowed, a hosted tool named only in `tool_choice` is held for as the tool itself is:
    the context window (200,000 tokens at $2.50 / 1M, $0.50), so $0.40 is a 402."""
    _, key = box.new_user("0.4")
    body = {"model": OPEN_MODEL, "messages": HELLO, "max_tokens": 100,
            "tool_choice": {"type": "web_search_preview"}}  # fmt: skip
    with box.http(key) as http:
        assert http.post("/v1/chat/completions", json=body).status_code == 402
    assert hostile.seen == []


LOCAL_TOOLS = {
    "custom": {"type": "custom", "custom": {"name": "apply_patch", "description": "Edit files"}},
    "local_shell": {"type": "local_shell"},
    "apply_patch": {"type": "apply_patch"},
    "computer_use_preview": {"type": "computer_use_preview", "display_width": 1024,
                             "display_height": 768, "environment": "browser"},
    "local_shell_environment": {"type": "shell", "environment": {"type": "local"}},
    "shell": {"type": "shell"},
}  # fmt: skip


@pytest.mark.parametrize("name", list(LOCAL_TOOLS))
def test_chat_tools_the_client_runs_itself_pass(
    box: OaiBox, hostile: HostileUpstream, name: str
) -> None:
    """A tool whose calls come back to the client to run (a freeform patch tool, a local shell,
    a computer the client drives) bills only tokens and reads nothing of the operator's: it is
    no server tool, and goes to the upstream as sent."""
    _, key = box.new_user("5")
    hostile.push(Act(200, [wire.chat_body(wire.chat_usage())]))
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
             LOCAL_TOOLS[name]]  # fmt: skip
    body = {"model": CHAT_MODEL, "messages": HELLO, "tools": tools}
    with box.http(key) as http:
        answer = http.post("/v1/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    assert hostile.seen[-1].body["tools"] == tools


def test_a_stored_audio_answer_is_refused(box: OaiBox, hostile: HostileUpstream) -> None:
    """An assistant turn's `audio: {id}` replays an audio answer stored on the provider account
    (the operator's): refused as a file_id is, on a provider that allows audio too."""
    messages = [*HELLO, {"role": "assistant", "audio": {"id": "audio_abc123"}},
                {"role": "user", "content": "Again, slower."}]  # fmt: skip
    for model in (CHAT_MODEL, OPEN_MODEL):
        error = refused(box, hostile, "/v1/chat/completions",
                        {"model": model, "messages": messages})  # fmt: skip
        assert error["param"] == "messages[1].audio", error


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/responses"])
def test_audio_sent_as_a_file_is_billed_audio(
    box: OaiBox, hostile: HostileUpstream, route: str
) -> None:
    """A file part of audio (`data:audio/...`) is audio input, billed at the audio input price
    as an `input_audio` part is: `field_not_allowed` unless the operator allowed `audio`."""
    if route == "/v1/responses":
        part = {"type": "input_file", "file_data": WAV.replace("audio", "Audio", 1),
                "filename": "a.wav"}  # fmt: skip
        body: dict[str, Any] = {"model": NATIVE_MODEL, "input": _asked(part)}
    else:
        part = {"type": "file", "file": {"file_data": WAV, "filename": "a.wav"}}
        messages = [{"role": "user", "content": [{"type": "text", "text": "Transcribe"}, part]}]
        body = {"model": CHAT_MODEL, "messages": messages}
    error = refused(box, hostile, route, body)
    assert error["code"] == "field_not_allowed", error
    assert "audio" in error["message"]


def test_a_reasoning_item_by_id_alone_does_not_reach_a_native_upstream(
    box: OaiBox, hostile: HostileUpstream
) -> None:
    """A reasoning item handed back without its `encrypted_content` is only an id, which OpenAI
    looks up among the responses stored on the account, the operator's (its other apps store
    by default): the model would read a reasoning the user never had. Stateless, it is left
    out, as a translation leaves it; one with its encrypted_content goes as sent."""
    _, key = box.new_user("5")
    hostile.push(Act(200, [wire.summary_and_citation().whole()]))
    sealed = {"type": "reasoning", "id": wire.RS_ID, "summary": [],
              "encrypted_content": "gAAAAABo" + "x" * 40}  # fmt: skip
    bare = {"type": "reasoning", "id": "rs_68af4030592c81938ec0a5fbab4a3e9f0a1b2c3d4e5f6a7b",
            "summary": []}  # fmt: skip
    given = [*_asked(), bare, sealed, {"role": "user", "content": "and?"}]
    with box.http(key) as http:
        answer = http.post("/v1/responses", json={"model": NATIVE_MODEL, "input": given})
    assert answer.status_code == 200, answer.text
    assert hostile.seen[-1].body["input"] == [*_asked(), sealed, given[-1]]


# Media by a URL that is no web address: a self-hosted upstream (vLLM, SGLang, a LiteLLM
# proxy) opens a file:// URL or a bare path on its own machine, and other schemes as it likes,
# for whoever holds a key; OpenAI and Anthropic take only http(s) and data: URLs.
LOCAL_URLS = ["file:///etc/passwd", "/srv/media/badge.png", " FILE:///etc/hostname",
              "gopher://127.0.0.1:6379/_INFO"]  # fmt: skip
# part -> where its URL is: vLLM also takes video_url, audio_url and a Responses-shaped
# input_image (its image_url a string) in chat, and fetches them alike
CHAT_MEDIA = {
    "image_url": lambda url: ({"image_url": {"url": url}}, "image_url.url"),
    "video_url": lambda url: ({"video_url": {"url": url}}, "video_url.url"),
    "audio_url": lambda url: ({"audio_url": {"url": url}}, "audio_url.url"),
    "input_image": lambda url: ({"image_url": url}, "image_url"),
}


@pytest.mark.parametrize("url", LOCAL_URLS)
def test_a_chat_media_url_that_is_no_web_address_is_refused(
    box: OaiBox, hostile: HostileUpstream, url: str
) -> None:
    for kind, shaped in CHAT_MEDIA.items():
        media, field = shaped(url)
        part = {"type": kind, **media}
        messages = [{"role": "user", "content": [{"type": "text", "text": "Describe"}, part]}]
        error = refused(box, hostile, "/v1/chat/completions",
                        {"model": CHAT_MODEL, "messages": messages})  # fmt: skip
        assert error["param"] == f"messages[0].content[1].{field}", error
        assert "http" in error["message"] and url.strip() not in error["message"], error


def test_chat_media_by_web_address_or_inline_passes(box: OaiBox, hostile: HostileUpstream) -> None:
    _, key = box.new_user("5")
    parts = [{"type": "text", "text": "Describe"}, {"type": "image_url", "image_url": PNG},
             {"type": "video_url", "video_url": {"url": "HTTPS://example.com/a.mp4"}},
             {"type": "audio_url", "audio_url": {"url": "http://example.com/a.wav"}}]  # fmt: skip
    hostile.push(Act(200, [wire.chat_body(wire.chat_usage())]))
    with box.http(key) as http:
        answer = http.post("/v1/chat/completions", json={
            "model": CHAT_MODEL, "messages": [{"role": "user", "content": parts}]})  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert hostile.seen[-1].body["messages"][0]["content"] == parts


@pytest.mark.parametrize("model", list(RESPONSES_MODELS.values()), ids=list(RESPONSES_MODELS))
def test_a_responses_image_url_that_is_no_web_address_is_refused(
    box: OaiBox, hostile: HostileUpstream, model: str
) -> None:
    """Native or translated alike: a `--responses-api` provider gets the part as sent."""
    for url in LOCAL_URLS[:2]:
        given = _asked({"type": "input_image", "image_url": url})
        error = refused(box, hostile, "/v1/responses", {"model": model, "input": given})
        assert error["param"] == "input[0].content[1].image_url", error


# vLLM also reads a part without a `type` by its field (its "simple" image, audio and video
# params: {"image_url": "..."}, which it says OpenAI takes too) and fetches that URL alike
TYPELESS_MEDIA = {
    "image_url": ({"image_url": "file:///etc/passwd"}, "image_url"),
    "image_url_object": ({"image_url": {"url": "/srv/media/badge.png"}}, "image_url.url"),
    "video_url": ({"video_url": "file:///etc/hostname"}, "video_url"),
    "audio_url": ({"audio_url": {"url": "gopher://127.0.0.1:6379/_INFO"}}, "audio_url.url"),
}


@pytest.mark.parametrize("name", list(TYPELESS_MEDIA))
def test_a_chat_media_part_without_a_type_is_checked_as_well(
    box: OaiBox, hostile: HostileUpstream, name: str
) -> None:
    part, field = TYPELESS_MEDIA[name]
    messages = [{"role": "user", "content": [{"type": "text", "text": "Describe"}, part]}]
    error = refused(box, hostile, "/v1/chat/completions",
                    {"model": CHAT_MODEL, "messages": messages})  # fmt: skip
    assert error["param"] == f"messages[0].content[1].{field}", error
