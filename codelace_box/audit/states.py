"""What the audit log records as a target's before and after: small, secret-free snapshots.

Each function reads one target as it is now (None when it does not exist), inside the caller's
transaction. Money is USD text, keys are shown by prefix or hint, never in full.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from codelace_box.accounts.users import normalize_email
from codelace_box.catalog.models import find_model
from codelace_box.db.models import ApiKey, ModelAlias, Provider, ProviderKey, User
from codelace_box.money import usd_text

State = dict[str, Any] | None


def user(email: str) -> State:
    """An account: id, email, status, balance, request limits."""
    row = User.get_or_none(User.email == normalize_email(email))
    if row is None:
        return None
    return {
        "id": row.uuid,
        "email": row.email,
        "status": row.status,
        "balance_usd": usd_text(row.balance_nanos),
        "rpm": row.rpm,
        "max_concurrent": row.max_concurrent,
    }


def api_key(key_uuid: str) -> State:
    """An API key by its UUID: prefix, name, owner, revoked or not, limits."""
    row = ApiKey.get_or_none(ApiKey.uuid == key_uuid)
    if row is None:
        return None
    return {
        "id": row.uuid,
        "key_prefix": row.key_prefix,
        "name": row.name,
        "user": row.user.email,
        "revoked": row.revoked_at is not None,
        "limit_usd": None if row.limit_nanos is None else usd_text(row.limit_nanos),
        "limit_reset": row.limit_reset,
        "expires_at": _iso(row.expires_at),
        "allowed_models": row.allowed_models,
        "can_manage_keys": bool(row.can_manage_keys),
    }


def _iso(moment: datetime | str | None) -> str | None:
    """A moment as ISO 8601 UTC with a Z (as `keys list`; str() wrote "2030-01-01 12:00:00"),
    to the microsecond when it has one (as an entry's `at`)."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=None).isoformat() + "Z"


def provider(name: str) -> State:
    """A provider with its keys by hint (parked: out of rotation until key-enable)."""
    row = Provider.get_or_none(Provider.name == name)
    if row is None:
        return None
    keys = ProviderKey.select().where(ProviderKey.provider == row.id).order_by(ProviderKey.id)
    return {
        "name": row.name,
        "kind": row.kind,
        "base_url": row.base_url,
        "enabled": bool(row.enabled),
        "allowed_fields": json.loads(row.allowed_fields or "[]"),
        "responses_api": bool(row.responses_api),
        "keys": [
            {
                "id": k.id,
                "hint": k.key_hint,
                "enabled": bool(k.enabled),
                "failing": bool(k.failing),
                "parked": bool(k.parked),
            }
            for k in keys
        ],
    }


def provider_of_key(key_id: int) -> str:
    """The name of the provider a key belongs to ('' if the key does not exist)."""
    row = ProviderKey.get_or_none(ProviderKey.id == key_id)
    return str(row.provider.name) if row is not None else ""


def _price(nanos: int | None) -> str | None:
    return None if nanos is None else usd_text(nanos)


def model(model_id: str) -> State:
    """A catalog model: provider, upstream name, prices (USD per 1M), caps, enabled, and the
    aliases routed to it (`models remove` deletes them with it)."""
    row = find_model(model_id)  # the id in either Unicode form, as the command finds it
    if row is None:
        return None
    aliases = ModelAlias.select(ModelAlias.name).where(ModelAlias.model == row.id)
    return {
        "aliases": sorted(str(a.name) for a in aliases),
        "id": row.id,
        "provider": row.provider.name,
        "upstream_model": row.upstream_model,
        "input_per_1m": _price(row.input_per_1m_nanos),
        "output_per_1m": _price(row.output_per_1m_nanos),
        "cache_read_per_1m": _price(row.cache_read_per_1m_nanos),
        "cache_write_per_1m": _price(row.cache_write_per_1m_nanos),
        "cache_write_1h_per_1m": _price(row.cache_write_1h_per_1m_nanos),
        "max_output_tokens": row.max_output_tokens,
        "context_tokens": row.context_tokens,
        "enabled": bool(row.enabled),
    }


def alias(name: str) -> State:
    """A model alias and the catalog id it routes to."""
    row = ModelAlias.get_or_none(ModelAlias.name == name)
    return None if row is None else {"name": row.name, "model": str(row.model.id)}
