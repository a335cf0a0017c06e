"""/v1/messages and count_tokens never name a file stored on the provider account: the box has
no Files API, so no user uploaded one, and any `file_id` (a document or image `source` of type
`file`, a `container_upload` block, at any depth: tool results, a document's own content)
names a file of the OPERATOR's Anthropic account, which the model would read, or count, to
whoever learned its id. Refused with Anthropic's error shape before anything is sent, as chat
refuses a `file` part by `file_id`. So is a custom skill (`container.skills`, by its id), and
no earlier request is named to Anthropic's cache diagnostics. Plain HTTP against the real
box."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from codelace_box.gateway.messages import refuse_stored_state
from tests.messages.conftest import ALIAS, OPENAI_ALIAS, MessagesBox
from tests.support import TLS

FILE_ID = "file_011CNha8iCJcU1wXNR6q4V8w"
FILE_SOURCE = {"type": "file", "file_id": FILE_ID}
ASK = {"type": "text", "text": "What does it say?"}
FILES_BETA = {"anthropic-beta": "files-api-2025-04-14", "anthropic-version": "2023-06-01"}


def _tool_turns(result: list[dict[str, Any]]) -> list[dict[str, Any]]:
    call = {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "read",
            "input": {"path": "a.pdf"}}  # fmt: skip
    answer = {"type": "tool_result", "tool_use_id": call["id"], "content": result}
    return [
        {"role": "user", "content": "Read a.pdf"},
        {"role": "assistant", "content": [call]},
        {"role": "user", "content": [answer]},
    ]


PLACES: dict[str, tuple[list[dict[str, Any]], str]] = {
    "document": ([{"role": "user", "content": [{"type": "document", "source": FILE_SOURCE}, ASK]}],
                 "messages.0.content.0.source.file_id"),
    "image": ([{"role": "user", "content": [ASK, {"type": "image", "source": FILE_SOURCE}]}],
              "messages.0.content.1.source.file_id"),
    "container_upload": ([{"role": "user", "content": [
        ASK, {"type": "container_upload", "file_id": FILE_ID}]}],
        "messages.0.content.1.file_id"),
    "tool_result": (_tool_turns([{"type": "document", "source": FILE_SOURCE}]),
                    "messages.2.content.0.content.0.source.file_id"),
    "document_content": ([{"role": "user", "content": [{"type": "document", "source": {
        "type": "content", "content": [{"type": "image", "source": FILE_SOURCE}]}}]}],
        "messages.0.content.0.source.content.0.source.file_id"),
    "web_fetch_result": ([{"role": "user", "content": "Fetch it"}, {"role": "assistant",
        "content": [
            {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_fetch", "input": {}},
            {"type": "web_fetch_tool_result", "tool_use_id": "srvtoolu_01", "content": {
                "type": "web_fetch_result", "url": "https://example.com/a.pdf",
                "content": {"type": "document", "source": FILE_SOURCE}}}]}],
        "messages.1.content.1.content.content.source.file_id"),
}  # fmt: skip
# A code execution result's outputs name the files its run wrote (downloadable outputs, not
# read by the model): a conversation that ran code goes on.
OUTPUT = {"type": "bash_code_execution_output", "file_id": FILE_ID}
CODE_RESULT = {"type": "bash_code_execution_tool_result", "tool_use_id": "srvtoolu_02",
               "content": {"type": "bash_code_execution_result", "stdout": "", "stderr": "",
                           "return_code": 0, "content": [OUTPUT]}}  # fmt: skip


def _post(box: MessagesBox, key: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{box.server.base_url}{path}", json=body, timeout=30,
                      headers={"x-api-key": key, **FILES_BETA}, verify=TLS)  # fmt: skip


def _assert_refused(answer: httpx.Response, where: str) -> None:
    assert answer.status_code == 400, answer.text
    payload = answer.json()
    assert payload["type"] == "error", payload
    assert payload["error"]["type"] == "invalid_request_error", payload
    assert payload["error"]["message"].startswith(f"{where}: "), payload
    assert "inline" in payload["error"]["message"], payload


@pytest.mark.parametrize("model", [ALIAS, OPENAI_ALIAS], ids=["anthropic", "openai"])
@pytest.mark.parametrize("place", sorted(PLACES))
def test_a_stored_file_is_refused_on_messages(fresh: MessagesBox, place: str, model: str) -> None:
    """Nothing reaches either upstream and nothing is charged."""
    email, key = fresh.new_key()
    before = fresh.balance_nanos(email)
    messages, where = PLACES[place]
    body = {"model": model, "max_tokens": 100, "messages": messages}
    _assert_refused(_post(fresh, key, "/v1/messages", body), where)
    assert fresh.fake.requests == [] and fresh.openai_fake.requests == []
    assert fresh.balance_nanos(email) == before


@pytest.mark.parametrize("model", [ALIAS, OPENAI_ALIAS], ids=["anthropic", "openai"])
def test_a_stored_file_is_refused_on_count_tokens(fresh: MessagesBox, model: str) -> None:
    """count_tokens passes the body to an anthropic upstream: the file's token count (its size,
    whether it exists) would reach whoever names it."""
    _, key = fresh.new_key()
    messages, where = PLACES["document"]
    body = {"model": model, "messages": messages}
    _assert_refused(_post(fresh, key, "/v1/messages/count_tokens", body), where)
    assert fresh.fake.requests == []


def test_a_system_block_naming_a_stored_file_is_refused(fresh: MessagesBox) -> None:
    _, key = fresh.new_key()
    body = {"model": ALIAS, "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}],
            "system": [{"type": "text", "text": "Be brief"},
                       {"type": "document", "source": FILE_SOURCE}]}  # fmt: skip
    _assert_refused(_post(fresh, key, "/v1/messages", body), "system.1.source.file_id")
    assert fresh.fake.requests == []


def test_inline_sources_still_pass(fresh: MessagesBox) -> None:
    """A base64 PDF titled `file_id` and a url image go up as sent (no `file_id` key)."""
    _, key = fresh.new_key()
    pdf = base64.b64encode(b"%PDF-1.4 file_id").decode()
    content = [{"type": "document", "title": "file_id", "source": {
                   "type": "base64", "media_type": "application/pdf", "data": pdf}},
               {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
               ASK]  # fmt: skip
    body = {"model": ALIAS, "max_tokens": 100, "messages": [{"role": "user", "content": content}]}
    answer = _post(fresh, key, "/v1/messages", body)
    assert answer.status_code == 200, answer.text
    assert fresh.fake.requests[-1].body["messages"][0]["content"] == content


def test_a_custom_skill_is_refused(fresh: MessagesBox) -> None:
    """A custom skill is one uploaded to the provider account (the box has no skills API):
    loaded into the container by its id, its instructions and scripts are the operator's,
    for the model to read out. Anthropic's own skills pass."""
    _, key = fresh.new_key()
    skills = [{"type": "anthropic", "skill_id": "xlsx", "version": "latest"},
              {"type": "custom", "skill_id": "skill_01AbCdEfGhIjKlMnOpQrStUv"}]  # fmt: skip
    body = {"model": ALIAS, "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}],
            "container": {"skills": skills}}  # fmt: skip
    answer = _post(fresh, key, "/v1/messages", body)
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]["message"]
    assert message.startswith("container.skills.1.skill_id: "), message
    assert fresh.fake.requests == []
    body["container"] = {"skills": skills[:1]}
    answer = _post(fresh, key, "/v1/messages", body)
    assert answer.status_code == 200, answer.text
    assert fresh.fake.requests[-1].body["container"] == {"skills": skills[:1]}


def test_cache_diagnostics_never_name_an_earlier_request(fresh: MessagesBox) -> None:
    """`diagnostics.previous_message_id` has Anthropic compare this prompt with the named
    request's (any on the operator's account: another user's) and say which of model, system,
    tools or messages differ and by how many tokens: an oracle on someone else's prompt. It
    goes up as null (Claude Code's opt-in still holds, nothing is compared)."""
    _, key = fresh.new_key()
    body = {"model": ALIAS, "max_tokens": 100, "messages": [{"role": "user", "content": "Hi"}],
            "diagnostics": {"previous_message_id": "msg_01AnotherUsersMessage0001"}}  # fmt: skip
    answer = httpx.post(f"{fresh.server.base_url}/v1/messages", json=body, timeout=30,
                        headers={"x-api-key": key,
                                 "anthropic-beta": "cache-diagnosis-2026-04-07"},
                        verify=TLS)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert fresh.fake.requests[-1].body["diagnostics"] == {"previous_message_id": None}


def test_a_code_execution_results_output_files_pass() -> None:
    """The history of a conversation that ran code carries its outputs' file ids: not refused
    (the model does not read them), while a document beside them is."""
    code = [{"role": "user", "content": "Plot it"},
            {"role": "assistant", "content": [
                {"type": "server_tool_use", "id": "srvtoolu_02", "name": "bash_code_execution",
                 "input": {"command": "python plot.py"}}, CODE_RESULT]},
            {"role": "user", "content": "Thanks"}]  # fmt: skip
    refuse_stored_state({"messages": code})
    code[2]["content"] = [{"type": "document", "source": FILE_SOURCE}]
    with pytest.raises(Exception, match=r"^messages\.2\.content\.0\.source\.file_id: "):
        refuse_stored_state({"messages": code})


def test_the_walk_that_refuses_also_counts_the_media() -> None:
    """One walk of the blocks serves the refusal and the hold: it returns the media the hold
    counts (tally.py anthropic_media), and a `file_id` that names no stored file (a tool's own
    input, a code run's output) is looked at again only to pass."""
    data = base64.b64encode(b"\x89PNG one pixel").decode()
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": data}}  # fmt: skip
    turns = _tool_turns([image, ASK])
    turns[1]["content"][0]["input"] = {"file_id": FILE_ID}  # the client's own tool argument
    turns.append({"role": "assistant", "content": [CODE_RESULT]})
    assert refuse_stored_state({"messages": turns}) == (1, len(data))
    assert refuse_stored_state({"messages": [{"role": "user", "content": "Hi"}]}) == (0, 0)


def test_a_stored_file_early_in_a_long_conversation_is_refused() -> None:
    """The file named in the first turn is found whatever plain turns follow it (the search
    stops at it: a later turn without a file must not hide it)."""
    turns = [{"role": "user", "content": [{"type": "document", "source": FILE_SOURCE}, ASK]},
             {"role": "assistant", "content": [{"type": "text", "text": "It says hello."}]},
             {"role": "user", "content": [{"type": "text", "text": "Thanks"}]}]  # fmt: skip
    with pytest.raises(Exception, match=r"^messages\.0\.content\.0\.source\.file_id: "):
        refuse_stored_state({"messages": turns})


@pytest.mark.parametrize("skill", [{"skill_id": "skill_01Ab"}, {"type": "user", "skill_id": "s"}])
def test_only_anthropics_own_skills_pass(skill: dict[str, Any]) -> None:
    """Any skill not of type anthropic names something stored on the provider account."""
    container = {"skills": [{"type": "anthropic", "skill_id": "pdf"}, skill]}
    with pytest.raises(Exception, match=r"^container\.skills\.1\.skill_id: "):
        refuse_stored_state({"container": container, "messages": []})


@pytest.mark.parametrize("model", [ALIAS, OPENAI_ALIAS], ids=["anthropic", "openai"])
def test_a_media_url_that_is_no_web_address_is_refused(fresh: MessagesBox, model: str) -> None:
    """A self-hosted upstream (an OpenAI-compatible one the box translates to, or one speaking
    Anthropic's API) opens a file:// URL or a bare path on its own machine for whoever holds a
    key; Anthropic and OpenAI take only http(s) URLs (and inline data). Nothing is sent."""
    email, key = fresh.new_key()
    before = fresh.balance_nanos(email)
    image = {"type": "image", "source": {"type": "url", "url": "file:///etc/passwd"}}
    document = {"type": "document", "source": {"type": "url", "url": "/srv/private/a.pdf"}}
    for messages, where in (
        ([{"role": "user", "content": [ASK, image]}], "messages.0.content.1.source.url"),
        ([{"role": "user", "content": [document, ASK]}], "messages.0.content.0.source.url"),
        (_tool_turns([image]), "messages.2.content.0.content.0.source.url"),
    ):
        body = {"model": model, "max_tokens": 100, "messages": messages}
        answer = _post(fresh, key, "/v1/messages", body)
        assert answer.status_code == 400, answer.text
        message = answer.json()["error"]["message"]
        assert message.startswith(f"{where}: ") and "/etc/passwd" not in message, message
    assert fresh.fake.requests == [] and fresh.openai_fake.requests == []
    assert fresh.balance_nanos(email) == before
