"""Every JSON shape the HTTP API answers with, in one place: the feature packages return rows
and dataclasses, and the routes hand them to these functions. Ids are UUID strings, money is
USD numbers (`usd_json`), moments ISO 8601 with a Z. docs/http-api.md shows the same shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from codelace_box.accounts.keys import NewKey
from codelace_box.accounts.limits import allowed_model_list, spent_in_period
from codelace_box.accounts.signin import CodeSent, SignedIn
from codelace_box.db.core import iso_z, utcnow
from codelace_box.db.models import ApiKey, Payment, User
from codelace_box.gateway.routing import ModelRoute
from codelace_box.money import usd_json
from codelace_box.reports.usage import RecentRequest, SpendHistory, UsageSummary

Json = dict[str, Any]


def health_view() -> Json:
    """GET /healthz."""
    return {"status": "ok"}


def code_sent_view(sent: CodeSent) -> Json:
    """POST /api/v1/auth/otp/request."""
    return {"email": sent.email, "expires_in_sec": sent.expires_in_sec}


def signed_in_view(signed_in: SignedIn) -> Json:
    """POST /api/v1/auth/otp/verify: the account and its new key (the only time it is shown)."""
    user = signed_in.user
    return {
        "user_id": user.uuid,
        "api_key": signed_in.api_key,
        "email": user.email,
        "credit_balance_usd": usd_json(user.balance_nanos),
    }


def profile_view(user: User) -> Json:
    """GET and PATCH /api/v1/auth/me."""
    return {"id": user.uuid, "email": user.email, "display_name": user.display_name}


def key_view(key: ApiKey) -> Json:
    """One entry of GET /api/v1/auth/key (never the full key); `expired`: past its expiry,
    refused (401 key_expired) though still listed until revoked."""
    expires = key.expires_at
    return {
        "id": key.uuid,
        "key_prefix": key.key_prefix,
        "name": key.name,
        "created_at": iso_z(key.created_at),
        "last_used_at": iso_z(key.last_used_at),
        "expired": expires is not None and expires <= utcnow(),
    } | key_limits_view(key)


def key_limits_view(key: ApiKey) -> Json:
    """A key's limits, what it spent in its current period and whether it may manage keys."""
    limit = key.limit_nanos
    return {
        "spent_usd": usd_json(spent_in_period(key)),
        "limit_usd": None if limit is None else usd_json(limit),
        "limit_reset": key.limit_reset,
        "expires_at": iso_z(key.expires_at),
        "allowed_models": allowed_model_list(key),
        "can_manage_keys": bool(key.can_manage_keys),
    }


def new_key_view(new: NewKey) -> Json:
    """POST /api/v1/auth/key: the full key is in this answer and nowhere else, ever."""
    return {
        "id": new.key.uuid,
        "key_prefix": new.key.key_prefix,
        "name": new.key.name,
        "full_key": new.full_key,
    } | key_limits_view(new.key)


def balance_view(user: User) -> Json:
    """GET /api/v1/customer/balance."""
    return {"credit_balance_usd": usd_json(user.balance_nanos)}


def request_view(row: RecentRequest) -> Json:
    """One of the recent requests of GET /api/v1/customer/usage."""
    return {
        "id": row.request_id,
        "model": row.model,
        "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens,
        "cache_read_tokens": row.cache_read_tokens,
        "cache_write_tokens": row.cache_write_tokens,
        "cost_usd": usd_json(row.cost_nanos),
        "status": row.status,
        "stream": row.stream,
        "duration_ms": row.duration_ms,
        "created_at": iso_z(row.created_at),
    }


def usage_view(summary: UsageSummary) -> Json:
    """GET /api/v1/customer/usage: the totals and the most recent requests."""
    return {
        "request_count": summary.request_count,
        "total_input_token": summary.input_tokens,
        "total_output_token": summary.output_tokens,
        "total_cost_usd": usd_json(summary.cost_nanos),
        "recent_requests": [request_view(row) for row in summary.recent],
    }


def payment_view(payment: Payment) -> Json:
    """One entry of GET /api/v1/customer/payment."""
    return {
        "id": payment.uuid,
        "amount_usd": usd_json(payment.amount_nanos),
        "kind": payment.kind,
        "status": payment.status,
        "created_at": iso_z(payment.created_at),
        "refunded_usd": usd_json(payment.refunded_nanos),  # by Stripe refunds and disputes
    }


def checkout_view(url: str) -> Json:
    """POST /api/v1/stripe/checkout and /setup."""
    return {"checkout_url": url}


def webhook_view(result: str) -> Json:
    """POST /api/v1/stripe/webhook, once the event's effect is on disk."""
    return {"received": True, "result": result}


def model_view(model: ModelRoute) -> Json:
    """A model in OpenAI's shape (GET /v1/models/<id>, and each entry of /v1/models)."""
    return {
        "id": model.id,
        "object": "model",
        "created": model.created,
        "owned_by": model.provider.name,
    }


def model_list_view(models: list[ModelRoute]) -> Json:
    """GET /v1/models, in OpenAI's list shape."""
    return {"object": "list", "data": [model_view(m) for m in models]}


def anthropic_model_list_view(named: list[tuple[str, ModelRoute]], has_more: bool = False) -> Json:
    """GET /v1/models with an `anthropic-version` header: a page of the enabled catalog and its
    aliases (name, model) in Anthropic's list shape."""
    data = [
        {
            "type": "model",
            "id": name,
            "display_name": name,
            "created_at": datetime.fromtimestamp(model.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lifecycle": "active",  # only servable models are listed; the SDK's type needs it
        }
        for name, model in named
    ]
    first, last = (data[0]["id"], data[-1]["id"]) if data else (None, None)
    return {"data": data, "has_more": has_more, "first_id": first, "last_id": last}


def pricing_view(models: list[ModelRoute]) -> list[Json]:
    """GET /api/v1/public/pricing: USD per 1M input, output, cache-read and cache-write tokens
    (1-hour writes apart) of each model."""
    return [
        {
            "model": m.id,
            "input_per_1m": usd_json(m.input_per_1m_nanos),
            "output_per_1m": usd_json(m.output_per_1m_nanos),
            "cache_read_per_1m": usd_json(m.cache_read_per_1m_nanos),
            "cache_write_per_1m": usd_json(m.cache_write_per_1m_nanos),
            "cache_write_1h_per_1m": usd_json(m.cache_write_1h_per_1m_nanos),
        }
        for m in models
    ]


def spend_view(history: SpendHistory) -> dict[str, Any]:
    """The portal's spend: this month's, and each of the last days' (oldest first)."""
    return {
        "month_spend_usd": usd_json(history.month_nanos),
        "daily": [
            {"date": day.isoformat(), "cost_usd": usd_json(nanos)} for day, nanos in history.daily
        ],
    }


def overview_view(user: User, history: SpendHistory) -> dict[str, Any]:
    """The portal's overview figures: the balance and this month's spend."""
    return {
        "credit_balance_usd": usd_json(user.balance_nanos),
        "month_spend_usd": usd_json(history.month_nanos),
    }
