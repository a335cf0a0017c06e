"""The upstream providers of the catalog and their keys (encrypted at rest, shown by hint)."""

from __future__ import annotations

import re

from peewee import IntegrityError

from codelace_box.crypto import encrypt_secret, mask_secret
from codelace_box.db.core import write_transaction
from codelace_box.db.models import Provider, ProviderKey
from codelace_box.errors import Conflict, InvalidRequest, NotFound
from codelace_box.gateway.providers import PROVIDER_KINDS, adapter_for

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


def add_provider(name: str, kind: str, secret_key: str, key: str, base_url: str = "") -> Provider:
    """Register an upstream provider with its first key."""
    if not _NAME_RE.match(name):
        raise InvalidRequest(
            f"provider name {name!r}: use lower-case letters, digits, '-', '_', '.'"
        )
    if kind not in PROVIDER_KINDS:
        raise InvalidRequest(
            f"provider kind must be one of {', '.join(PROVIDER_KINDS)}, got {kind!r}"
        )
    if base_url and not base_url.startswith(("http://", "https://")):
        raise InvalidRequest(f"base URL must start with http:// or https://, got {base_url!r}")
    try:
        with write_transaction():
            provider = Provider.create(name=name, kind=kind, base_url=base_url.rstrip("/"))
            _store_key(provider.id, secret_key, key)
    except IntegrityError:
        raise Conflict(f"a provider named {name} already exists", code="provider_exists") from None
    return provider


def _store_key(provider_id: int, secret_key: str, key: str) -> ProviderKey:
    key = key.strip()
    if not key:
        raise InvalidRequest("a provider key must not be empty")
    if not (key.isascii() and key.isprintable()) or any(c.isspace() for c in key):
        raise InvalidRequest(  # an HTTP header could never carry it; the key is not echoed
            "a provider key is printable ASCII without spaces, and this one is not "
            "(a masked hint such as 'sk-…abcd' is not the key itself)"
        )
    return ProviderKey.create(
        provider=provider_id,
        key_encrypted=encrypt_secret(secret_key, key),
        key_hint=mask_secret(key),
    )


def get_provider(name: str) -> Provider:
    """A provider by name; NotFound if there is none."""
    provider = Provider.get_or_none(Provider.name == name)
    if provider is None:
        raise NotFound(f"no provider named {name}", code="provider_not_found")
    return provider


def add_provider_key(name: str, secret_key: str, key: str) -> ProviderKey:
    """Add another key to a provider's rotation."""
    provider = get_provider(name)
    with write_transaction():
        return _store_key(provider.id, secret_key, key)


def set_provider_enabled(name: str, enabled: bool) -> Provider:
    """Enable or disable a provider (its models answer 503 while disabled)."""
    provider = get_provider(name)
    with write_transaction():
        Provider.update(enabled=enabled).where(Provider.id == provider.id).execute()
    provider.enabled = enabled
    return provider


def set_key_enabled(key_id: int, enabled: bool) -> ProviderKey:
    """Take a provider key out of rotation, or put it back (clearing its failing flag)."""
    key = ProviderKey.get_or_none(ProviderKey.id == key_id)
    if key is None:
        raise NotFound(f"no provider key with id {key_id}", code="provider_key_not_found")
    with write_transaction():
        update = {"enabled": enabled} | (
            {"failing": False, "failure_reason": ""} if enabled else {}
        )
        ProviderKey.update(**update).where(ProviderKey.id == key_id).execute()
    return ProviderKey.get_by_id(key_id)


def list_providers() -> list[Provider]:
    """Every provider, by name."""
    return list(Provider.select().order_by(Provider.name))


def provider_keys(provider_id: int) -> list[ProviderKey]:
    """A provider's keys (encrypted; show only `key_hint`)."""
    return list(
        ProviderKey.select().where(ProviderKey.provider == provider_id).order_by(ProviderKey.id)
    )


def default_base_url(kind: str) -> str:
    """The base URL used for a provider kind when none is set."""
    return adapter_for(kind).default_base_url
