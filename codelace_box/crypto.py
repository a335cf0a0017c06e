"""Encryption at rest of provider keys with the server secret (Fernet: AES-128-CBC + HMAC)."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from codelace_box.errors import ConfigError

_CONTEXT = b"codelace-box provider keys v1:"


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(_CONTEXT + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt_secret(secret_key: str, plaintext: str) -> bytes:
    """Encrypt a provider key for storage."""
    return _fernet(secret_key).encrypt(plaintext.encode())


def decrypt_secret(secret_key: str, token: bytes) -> str:
    """Decrypt a stored provider key; a wrong server secret is a configuration error."""
    try:
        return _fernet(secret_key).decrypt(bytes(token)).decode()
    except InvalidToken:
        raise ConfigError(
            "cannot decrypt provider keys: server.secret_key differs from the one they were "
            "stored with"
        ) from None


def mask_secret(plaintext: str) -> str:
    """A hint that identifies a key without revealing it, e.g. 'sk-…a1b2'."""
    head = plaintext[:3] if len(plaintext) > 12 else ""
    tail = plaintext[-4:] if len(plaintext) > 8 else ""
    return f"{head}…{tail}"


def mask_in(text: str, secret: str) -> str:
    """`text` with every occurrence of `secret` replaced by its mask."""
    secret = secret.strip()
    return text.replace(secret, mask_secret(secret)) if secret else text
