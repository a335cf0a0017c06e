"""A file named by reference, not sent inline: refused alike on every OpenAI-shaped route.

Chat's `file` part (`file.file_id`, `file.file_url`) and the Responses API's `input_file` and
`input_image` (`file_id`, `file_url`) ask the provider for input the body does not hold. A
`file_id` names a file stored on the provider account: the box has no files API, so no user
uploaded it, it is the operator's, and the model would read it to whoever learned its id. A
`file_url` is a document the provider fetches, input the hold never saw. Both are refused even
beside the inline data a translation reads: a native upstream gets the part as sent. (The
Messages API's own refusal, gateway/messages.py, names Anthropic's inline sources instead.)

Media by a URL is the provider's to fetch, and only a web address (http, https) or inline data
(a `data:` URL) is media: OpenAI and Anthropic take nothing else. A self-hosted upstream (vLLM,
SGLang, a LiteLLM proxy) may open a `file://` URL or a bare path on its own machine, or speak
another scheme to its network, for whoever holds a key: such a URL is refused on every route.
"""

from __future__ import annotations

from typing import Any

from codelace_box.errors import InvalidRequest

FILE_REFERENCES = ("file_id", "file_url")  # a file part's references to its file
MEDIA_SCHEMES = ("http://", "https://", "data:")  # what a media URL may start with
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


def local_media_url(url: object) -> bool:
    """Whether a media URL is no web address nor inline data (`file:///etc/passwd`, a bare
    path, `gopher://...`): one a self-hosted upstream would open on its own machine."""
    return isinstance(url, str) and not url.lstrip()[:8].lower().startswith(MEDIA_SCHEMES)


def refuse_local_url(url: object, where: str) -> None:
    """A 400 naming `where` when `url` is a `local_media_url` (the URL itself not repeated:
    its scheme only)."""
    if local_media_url(url):
        raise InvalidRequest(local_url_message(str(url), where), param=where)


def local_url_message(url: str, where: str) -> str:
    """The words of a `local_media_url`'s refusal."""
    scheme, colon, _ = url.strip().partition(":")
    named = f"a {scheme[:20]}: URL" if colon and scheme.isalnum() else "a path"
    return (
        f"{where}: media must be an http(s) URL or inline (a data: URL), not {named}: the "
        "provider would open it on its own machine"
    )
