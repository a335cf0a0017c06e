"""crypto's masking by where a secret stands, whatever its shape: a URL's password
(`https://user:pass@host`), HTTP Basic credentials, and the value of a query parameter or
header that names a key (`?key=`, `api_key=`, `x-api-key:`), as upstreams and proxies echo
them in their errors; the words around them and names of the same look kept."""

from __future__ import annotations

import pytest

from codelace_box.crypto import mask_in, mask_keys, mask_tokens
from codelace_box.providers.openai_errors import redact

IN_USE = "sk-the-key-in-use-0000000000"

LEAKS = [  # (text, the secret in it)
    ("Cannot connect to https://alice:S3cr3tPassw0rd@proxy.example.com/v1", "S3cr3tPassw0rd"),
    ("upstream postgresql://codelace:Tr0ub4dor@db.internal:5432/box refused", "Tr0ub4dor"),
    ("proxy http://bob:correcthorsebattery@10.0.0.2:3128 said 407", "correcthorsebattery"),
    ("Authorization: Basic dXNlcjpodW50ZXIyeHl6 was refused", "dXNlcjpodW50ZXIyeHl6"),
    ("authorization: basic YWxhZGRpbjpvcGVuc2VzYW1l", "YWxhZGRpbjpvcGVuc2VzYW1l"),
    ("GET https://api.example.com/v1?token=DGcrGgVLBeweQCbkGT8k failed", "DGcrGgVLBeweQCbkGT8k"),
    ("url=https://x.example/v1?alt=sse&key=aBc12345xyz", "aBc12345xyz"),
    ("invalid x-api-key: zzgrcrkkjqebolzxbaknxfrbwswvuqnf", "zzgrcrkkjqebolzxbaknxfrbwswvuqnf"),
    ('{"api_key": "q8w7e6r5t4y3u2i1"}', "q8w7e6r5t4y3u2i1"),
    ("access_token=ya29.a0AfH6SMBx3 expired", "ya29.a0AfH6SMBx3"),
]


@pytest.mark.parametrize(("text", "secret"), LEAKS, ids=[s for _, s in LEAKS])
def test_a_secret_is_masked_by_where_it_stands(text: str, secret: str) -> None:
    """Each went through whole to the client, the request history and the log: too short
    or too plain to be seen by its shape."""
    for masked in (mask_keys(text), mask_in(text, IN_USE), redact(text), mask_tokens(text)):
        assert secret not in masked and secret[:-2] not in masked, masked
        assert masked.startswith(text[: text.index(secret)]), masked


KEPT = [
    "Basic authentication is not supported",
    "the key=messages field is missing",
    "key: messages.0.content is required",
    "Invalid token: Expected a string",
    "see https://docs.example.com/v1/keys?tab=api-keys#rotate",
    "mailto:support@example.com or user@example.com:22",
    "max_tokens=4096 is too large; max_tokens: 4096",
    "git@github.com:openai/openai-python.git",
    "accounts/fireworks/models/llama4-maverick-instruct-basic 2024-05-01 not found",
    "only the basic gpt-4o-mini-2024-07-18 tier",
]


@pytest.mark.parametrize("text", KEPT)
def test_words_beside_such_places_are_kept(text: str) -> None:
    assert mask_keys(text) == text, mask_keys(text)


PASSWORDS = [  # (text, the password in it): a hint of a password tells what part of it is
    ("proxy http://bob:correcthorsebattery@10.0.0.2:3128 said 407", "correcthorsebattery"),
    ("Authorization: Basic dXNlcjpjb3JyZWN0aG9yc2ViYXR0ZXJ5", "dXNlcjpjb3JyZWN0aG9yc2ViYXR0ZXJ5"),
    ('{"password": "Tr0ub4dor&3-horse", "user": "bob"}', "Tr0ub4dor&3-horse"),
    ("client_secret=GOCSPX-abcdef123456 refused", "GOCSPX-abcdef123456"),
]


@pytest.mark.parametrize(("text", "secret"), PASSWORDS, ids=[s for _, s in PASSWORDS])
def test_a_password_is_masked_without_a_hint(text: str, secret: str) -> None:
    """A key's hint (first 3 and last 4) names which key it was; a password's said 7 of its
    characters ('cor…tery'), and Basic credentials' last 4 base64 characters are the password's
    last 3 bytes."""
    masked = mask_keys(text)
    before = text[: text.index(secret)]
    assert masked.startswith(before + "…") and secret[-4:] not in masked, masked
