"""The operator's catalog: upstream providers, their (encrypted) keys, and priced model ids."""

from __future__ import annotations

import re
from decimal import Decimal

from peewee import IntegrityError

from codelace_box.billing.money import AmountTooLarge, usd_to_nanos
from codelace_box.crypto import encrypt_secret, mask_secret
from codelace_box.db.core import MAX_SQLITE_INTEGER, utcnow, write_transaction
from codelace_box.db.models import CatalogModel, Provider, ProviderKey
from codelace_box.errors import Conflict, InvalidRequest, NotFound
from codelace_box.gateway.providers import PROVIDER_KINDS, adapter_for

MAX_PRICE_PER_1M_NANOS = 1_000_000 * 1_000_000_000  # far above any real price; fits SQLite
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_MODEL_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}/\S{1,200}$")


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


def parse_price(value: Decimal | str | float | int, what: str) -> int:
    """A USD-per-1M-tokens price to nano-USD; InvalidRequest when it is not a price."""
    try:
        nanos = usd_to_nanos(value)
    except AmountTooLarge:
        raise InvalidRequest(f"{what} must be between 0 and 1,000,000 USD per 1M tokens") from None
    except ValueError:
        raise InvalidRequest(f"{what} must be a non-negative USD amount, got {value!r}") from None
    if nanos < 0:
        raise InvalidRequest(f"{what} must not be negative, got {value!r}")
    if nanos > MAX_PRICE_PER_1M_NANOS:
        raise InvalidRequest(f"{what} must be at most 1,000,000 USD per 1M tokens")
    return nanos


def _check_token_cap(max_output_tokens: int | None) -> None:
    if max_output_tokens is not None and max_output_tokens < 1:
        raise InvalidRequest("max output tokens must be at least 1")
    if max_output_tokens is not None and max_output_tokens > MAX_SQLITE_INTEGER:
        raise InvalidRequest(f"max output tokens must be at most {MAX_SQLITE_INTEGER}")


def set_model(
    model_id: str,
    input_per_1m: Decimal | str | float,
    output_per_1m: Decimal | str | float,
    *,
    provider: str | None = None,
    upstream_model: str | None = None,
    max_output_tokens: int | None = None,
    keep_unset: bool = False,
) -> CatalogModel:
    """Add a model id to the catalog, or change its prices, provider or upstream name.

    With `keep_unset`, setting an existing id keeps its provider, upstream name and output cap
    where they are not given (the CLI's `models set ID --input-per-1m X --output-per-1m Y`).
    """
    if not _MODEL_ID_RE.match(model_id):
        raise InvalidRequest(f"model id must look like provider/model, got {model_id!r}")
    prefix, rest = model_id.split("/", 1)
    current = CatalogModel.get_or_none(CatalogModel.id == model_id) if keep_unset else None
    if current is not None:
        provider = provider or current.provider.name
        upstream_model = upstream_model or current.upstream_model
        if max_output_tokens is None:
            max_output_tokens = current.max_output_tokens
    owner = get_provider(provider or prefix)
    _check_token_cap(max_output_tokens)
    fields = {
        "provider": owner.id,
        "upstream_model": upstream_model or rest,
        "input_per_1m_nanos": parse_price(input_per_1m, "input price"),
        "output_per_1m_nanos": parse_price(output_per_1m, "output price"),
        "max_output_tokens": max_output_tokens,
        "updated_at": utcnow(),
    }
    with write_transaction():
        if CatalogModel.get_or_none(CatalogModel.id == model_id) is None:
            CatalogModel.create(id=model_id, **fields)
        else:
            CatalogModel.update(**fields).where(CatalogModel.id == model_id).execute()
    return CatalogModel.get_by_id(model_id)


def get_model(model_id: str) -> CatalogModel:
    """A catalog entry; NotFound if there is none."""
    model = CatalogModel.get_or_none(CatalogModel.id == model_id)
    if model is None:
        raise NotFound(f"no model {model_id} in the catalog", code="model_not_found")
    return model


def set_model_enabled(model_id: str, enabled: bool) -> CatalogModel:
    """Enable or disable a model id (disabled ids answer 404)."""
    model = get_model(model_id)
    with write_transaction():
        CatalogModel.update(enabled=enabled, updated_at=utcnow()).where(
            CatalogModel.id == model_id
        ).execute()
    model.enabled = enabled
    return model


def list_models(enabled_only: bool = False) -> list[CatalogModel]:
    """The catalog, by id, with each model's provider loaded."""
    query = CatalogModel.select(CatalogModel, Provider).join(Provider).order_by(CatalogModel.id)
    if enabled_only:
        query = query.where(CatalogModel.enabled == True)  # noqa: E712
    return list(query)


def default_base_url(kind: str) -> str:
    """The base URL used for a provider kind when none is set."""
    return adapter_for(kind).default_base_url
