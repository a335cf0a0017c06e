"""What reaches the operator's provider account through the OpenAI-shaped routes beside what the
box reads: a stored file or audio answer named by its id, a file fetched by URL, a hosted tool
named in another case or only in `tool_choice`, audio sent as a file. Each is a 400 naming the
field before anything is sent or held (or, for what bills beyond the token prices, unless the
operator allowed it); the tools a client runs itself go through."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.hostile_upstream import HostileUpstream
from tests.oaiwire.conftest import CHAT_MODEL, OaiBox
from tests.oaiwire.test_requests import FUNCTION, RESPONSES_MODELS, refused

pytestmark = pytest.mark.timeout(60)
PDF = "data:application/pdf;base64,JVBERi0xLjQKJcfsj6IKNSAwIG9iago="
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
FILE_ID = "file-6F2ksmvXxt4VdoqmHRw6kL"


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
