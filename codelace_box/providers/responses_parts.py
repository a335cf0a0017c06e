"""Responses API content parts -> Chat Completions parts (pure code): a message's text parts
(`input_text`, `output_text`), `input_image` (its `image_url` a web address or a data URL:
providers/file_refs.py) and `input_file` (inline `file_data` only), and the parts of a tool's
output (text and images). Split from responses_input.py, which converts the items."""

from __future__ import annotations

from typing import Any

from codelace_box.errors import InvalidRequest
from codelace_box.providers.file_refs import (
    FILE_REFERENCES,
    refuse_file_reference,
    refuse_local_url,
)

JSON = dict[str, Any]


def _parts(content: Any, where: str) -> list[JSON]:
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content must be a string or a list of parts", param=where)
    for j, part in enumerate(content):
        if not isinstance(part, dict):
            raise InvalidRequest(f"{where}.content[{j}] must be an object", param=where)
    return content


def _text_of(part: JSON, kinds: tuple[str, ...], where: str) -> str:
    kind = part.get("type")
    if kind not in kinds:
        raise InvalidRequest(
            f"{where}: content parts of type {kind!r} are not allowed here "
            f"(expected {' or '.join(kinds)})",
            param=where,
        )
    text = part.get("refusal") if kind == "refusal" else part.get("text")
    if not isinstance(text, str):
        raise InvalidRequest(f"{where}: a {kind} part needs its text", param=where)
    return text


def assistant_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    kinds = ("output_text", "refusal", "input_text")
    return "".join(_text_of(part, kinds, where) for part in _parts(content, where))


def system_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(_text_of(part, ("input_text",), where) for part in _parts(content, where))


def user_content(content: Any, where: str) -> str | list[JSON]:
    if isinstance(content, str):
        return content
    converted = []
    for j, part in enumerate(_parts(content, where)):
        converted.append(_user_part(part, f"{where}.content[{j}]"))
    return converted


def _user_part(part: JSON, where: str) -> JSON:
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": _text_of(part, (kind,), where)}
    if kind == "input_image":
        return _image_part(part, where)
    if kind == "input_file":
        refuse_file_reference(part, FILE_REFERENCES, where)
        data = part.get("file_data")
        if not isinstance(data, str) or not data:
            raise InvalidRequest(
                f"{where}: input_file needs file_data (the file inline)",
                param=where,
            )
        file: JSON = {"file_data": data}
        if isinstance(part.get("filename"), str):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    raise InvalidRequest(
        f"{where}: content parts of type {kind!r} are not supported "
        "(use input_text, input_image or input_file)",
        param=where,
    )


def _image_part(part: JSON, where: str) -> JSON:
    refuse_file_reference(part, ("file_id",), where)
    url = part.get("image_url")
    if not isinstance(url, str) or not url:
        raise InvalidRequest(
            f"{where}: input_image needs image_url (a URL or a data URL)",
            param=where,
        )
    refuse_local_url(url, f"{where}.image_url")
    image: JSON = {"url": url}
    if part.get("detail") in ("low", "high"):
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def output_parts(output: list[Any], where: str) -> tuple[list[str], list[JSON]]:
    texts: list[str] = []
    images: list[JSON] = []
    for j, part in enumerate(output):
        at = f"{where}.output[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text"):
            texts.append(_text_of(part, (kind,), at))
        elif kind == "input_image":
            images.append(_image_part(part, at))
        else:
            raise InvalidRequest(
                f"{at}: tool output parts must be input_text or input_image", param=at
            )
    return texts, images
