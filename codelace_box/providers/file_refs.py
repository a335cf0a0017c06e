"""A file named by reference, not sent inline: refused alike on every OpenAI-shaped route.

Chat's `file` part (`file.file_id`, `file.file_url`) and the Responses API's `input_file` and
`input_image` (`file_id`, `file_url`) ask the provider for input the body does not hold. A
`file_id` names a file stored on the provider account: the box has no files API, so no user
uploaded it, it is the operator's, and the model would read it to whoever learned its id. A
`file_url` is a document the provider fetches, input the hold never saw. Both are refused even
beside the inline data a translation reads: a native upstream gets the part as sent. (The
Messages API's own refusal, gateway/messages.py, names Anthropic's inline sources instead.)
"""

from __future__ import annotations

from typing import Any

from codelace_box.errors import InvalidRequest

FILE_REFERENCES = ("file_id", "file_url")  # a file part's references to its file
_WHAT = {
    "file_id": "a file stored on the provider's account",
    "file_url": "a file on the web",
}


def refuse_file_reference(part: dict[str, Any], names: tuple[str, ...], where: str) -> None:
    """A 400 naming `{where}.{name}` for the first of `names` the part (or a chat part's
    `file` object) sets."""
    for name in names:
        if part.get(name) is not None:
            raise InvalidRequest(
                f"{where}.{name} names {_WHAT[name]}, which the box does not read for you: "
                "send the file inline (file_data, or a data URL as image_url)",
                code="invalid_request",
                param=f"{where}.{name}",
            )
